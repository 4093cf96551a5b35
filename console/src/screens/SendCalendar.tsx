// The dry run's schedule as a calendar: each month the mails fall in, with the mails of each day,
// weekends, the Japanese calendar's holidays (by name) and the company's closed days marked -
// what the journey will do over Golden Week, seen before it goes live.
import { useTranslation } from "react-i18next";

/** Days as the dry run writes them: "YYYY-MM-DD" in the journey's time zone. */
type Day = string;

function parts(day: Day): [number, number, number] {
  const [year, month, date] = day.split("-").map(Number);
  return [year, month, date];
}

function key(year: number, month: number, date: number): Day {
  return `${year}-${String(month).padStart(2, "0")}-${String(date).padStart(2, "0")}`;
}

/** The months from the first day to the last, as [year, month]. */
function months(first: Day, last: Day): [number, number][] {
  const [y0, m0] = parts(first);
  const [y1, m1] = parts(last);
  const found: [number, number][] = [];
  let [y, m] = [y0, m0];
  // (a dry run covers weeks, not years: two years of months at most)
  while ((y < y1 || (y === y1 && m <= m1)) && found.length < 24) {
    found.push([y, m]);
    [y, m] = m === 12 ? [y + 1, 1] : [y, m + 1];
  }
  return found;
}

/** A month's weeks, Monday first; null where a day belongs to the month before or after. */
function weeks(year: number, month: number): (number | null)[][] {
  const first = new Date(Date.UTC(year, month - 1, 1));
  const length = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const lead = (first.getUTCDay() + 6) % 7; // Monday = 0
  const cells: (number | null)[] = [...Array<null>(lead).fill(null)];
  for (let date = 1; date <= length; date += 1) cells.push(date);
  while (cells.length % 7) cells.push(null);
  const rows: (number | null)[][] = [];
  for (let i = 0; i < cells.length; i += 7) rows.push(cells.slice(i, i + 7));
  return rows;
}

export function SendCalendar({
  mails,
  daysOff,
}: {
  mails: Record<string, Record<Day, number>>;
  daysOff: Record<Day, string>;
}) {
  const { t, i18n } = useTranslation();
  const locale = i18n.language?.startsWith("ja") ? "ja-JP" : "en-GB";
  const perDay: Record<Day, { total: number; templates: string[] }> = {};
  for (const [template, days] of Object.entries(mails)) {
    for (const [day, count] of Object.entries(days)) {
      const entry = (perDay[day] ??= { total: 0, templates: [] });
      entry.total += count;
      entry.templates.push(`${template} × ${count}`);
    }
  }
  const days = [...Object.keys(perDay), ...Object.keys(daysOff)].sort();
  if (days.length === 0) return null;
  const weekday = new Intl.DateTimeFormat(locale, { weekday: "short", timeZone: "UTC" });
  const monthName = new Intl.DateTimeFormat(locale, { year: "numeric", month: "long", timeZone: "UTC" });
  // 2026-11-30 was a Monday: the seven names, Monday first.
  const names = Array.from({ length: 7 }, (_, i) => weekday.format(new Date(Date.UTC(2026, 10, 30 + i))));

  return (
    <div className="send-calendar">
      {months(days[0], days[days.length - 1]).map(([year, month]) => (
        <table key={`${year}-${month}`} className="calendar">
          <caption>{monthName.format(new Date(Date.UTC(year, month - 1, 1)))}</caption>
          <thead>
            <tr>
              {names.map((name) => (
                <th key={name} scope="col">
                  {name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {weeks(year, month).map((week, row) => (
              <tr key={row}>
                {week.map((date, column) => {
                  if (date === null) return <td key={column} />;
                  const day = key(year, month, date);
                  const off = daysOff[day];
                  const sent = perDay[day];
                  const classes = [
                    column >= 5 ? "weekend" : "",
                    off ? (off === "closed" ? "closed" : "holiday") : "",
                    sent ? "sending" : "",
                  ].filter(Boolean);
                  return (
                    <td key={column} className={classes.join(" ") || undefined} data-day={day}>
                      <time dateTime={day}>{date}</time>
                      {off && <span className="day-off">{off === "closed" ? t("canvas.closed") : off}</span>}
                      {sent && (
                        <span className="mails" title={sent.templates.join("\n")}>
                          {t("canvas.mails_that_day", { count: sent.total })}
                        </span>
                      )}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      ))}
    </div>
  );
}
