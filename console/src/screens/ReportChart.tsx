// People's and machines' opens and clicks by day, drawn by ECharts (only the parts a bar chart
// needs are imported, so the chunk stays small). The table beside it carries the same figures
// for anyone who does not see the chart; ECharts' aria option describes it in words too.
import { BarChart } from "echarts/charts";
import {
  AriaComponent,
  GridComponent,
  LegendComponent,
  TooltipComponent,
} from "echarts/components";
import { init, use } from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";
import { useEffect, useRef } from "react";

use([BarChart, GridComponent, LegendComponent, TooltipComponent, AriaComponent, CanvasRenderer]);

export interface Series {
  name: string;
  values: number[];
  stack?: string;
  color: string;
}

/** Days on the axis as "MM-DD" (the year is the report's). */
const monthAndDay = (day: string) => day.slice(5);

export function DailyBars({
  days,
  series,
  label,
  axisLabel = monthAndDay,
}: {
  days: string[];
  series: Series[];
  label: string;
  /** How a category is written on the axis: a day by default, anything else as it is. */
  axisLabel?: (category: string) => string;
}) {
  const element = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (element.current === null) return;
    const chart = init(element.current, undefined, { renderer: "canvas" });
    chart.setOption({
      aria: { enabled: true },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 16, top: 32, bottom: 24 },
      xAxis: { type: "category", data: days.map(axisLabel) },
      yAxis: { type: "value", minInterval: 1 },
      series: series.map((s) => ({
        name: s.name,
        type: "bar",
        stack: s.stack,
        data: s.values,
        itemStyle: { color: s.color },
      })),
    });
    const resize = () => chart.resize();
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      chart.dispose();
    };
  }, [days, series, axisLabel]);
  // ECharts labels the element it draws in with its own description of the data (aria); the
  // figure's caption says what the chart is.
  return (
    <figure className="report-chart">
      <figcaption>{label}</figcaption>
      <div ref={element} className="chart" />
    </figure>
  );
}
