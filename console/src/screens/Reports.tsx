// Reports: a mail template (per version) or a journey (per version and node, with its AWS cost)
// over a range of days, from the counters the events stream keeps. People's and machines'
// activity side by side, never mixed; every figure's definition one click away (the API sends
// them). The funnel and revenue attribution are views of their own under the same filters.
import { useCallback, useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate, useParams } from "react-router";

import { allItems, api, describeError } from "../api";
import { saveAs } from "../download";
import { reasonText } from "../i18n";
import { sourceName } from "../names";
import { useLatestRequest } from "../useLatestRequest";
import { Attribution, useFormats } from "./Attribution";
import { type CostAnswer, JourneyCost } from "./JourneyCost";
import { DailyBars } from "./ReportChart";

type Counts = Record<string, number>;

interface Figures {
  counts: Counts;
  rates: Record<string, number | null>;
  machines_by_reason: { opened: Counts; clicked: Counts };
  outcomes: Counts;
}

interface Part extends Figures {
  version: number;
  node?: string;
  by_day: Record<string, Counts>;
}

interface Report {
  kind: "mail" | "journey";
  id: string;
  from: string;
  to: string;
  time_zone: string;
  total: Figures;
  parts: Part[];
  definitions: Record<string, string>;
  rates_are: Record<string, string>;
  cost?: CostAnswer;
}

const PATHS = { mail: "/admin/reports/mail", journey: "/admin/reports/journeys" } as const;

function daysBefore(day: string, days: number): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() - days);
  return date.toISOString().slice(0, 10);
}

function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`;
}

function everyDay(from: string, to: string): string[] {
  const days: string[] = [];
  for (let day = from; day <= to && days.length < 400; day = daysBefore(day, -1)) days.push(day);
  return days;
}

export default function Reports() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const params = useParams();
  const kind = params.kind === "journey" ? "journey" : "mail";
  // The funnel and attribution: views over all leads and deals, with no mail or journey chosen
  const view = params.kind === "funnel" || params.kind === "attribution" ? params.kind : null;
  const wholeAccount = view !== null;
  const id = params.id ?? "";
  // What may be reported on, by name: a template's or journey's id alone says little
  const [choices, setChoices] = useState<{ mail: Choice[]; journey: Choice[] }>({
    mail: [],
    journey: [],
  });
  // Blank until chosen: the API's default is the last 30 days on the stack's own clock (the
  // local runtime's may be virtual) in the account's time zone, which the browser cannot know.
  const [to, setTo] = useState("");
  const [from, setFrom] = useState("");
  const [report, setReport] = useState<Report | null>(null);
  // The days the funnel or attribution answered for (the API's default until some are
  // chosen), shown in the date fields as the report's own are: of the view that answered
  const [answered, setAnswered] = useState<{ view: string; from: string; to: string } | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const formats = useFormats();
  const shownRange = view === null ? report : answered?.view === view ? answered : null;
  const onRange = useCallback(
    (range: { from: string; to: string }) => {
      if (view) setAnswered({ view, ...range });
    },
    [view],
  );

  useEffect(() => {
    Promise.all([
      allItems<{ template_id: string; name?: string }>("/admin/templates"),
      allItems<{ journey_id: string; name?: string }>("/admin/journeys"),
    ])
      .then(([templates, journeys]) =>
        setChoices({
          mail: templates.map((item) => ({ id: item.template_id, name: item.name ?? "" })),
          journey: journeys.map((item) => ({ id: item.journey_id, name: item.name ?? "" })),
        }),
      )
      .catch((error) => setProblem(describeError(error)));
  }, []);

  // Only the answer to the last report asked is shown: a mail chosen (or a day typed) while
  // the last one's report loads is answered first, and the older answer, arriving after it,
  // put the other mail's figures under this choice (the funnel's or attribution's, too).
  const begin = useLatestRequest();
  const load = useCallback(async () => {
    const isLatest = begin();
    if (!id || wholeAccount) {
      setReport(null); // a mail's or journey's figures are not the funnel's nor attribution's
      return;
    }
    setProblem(null);
    try {
      const answer = await api<Report>("GET", `${PATHS[kind]}/${id}`, { query: { from, to } });
      if (isLatest()) setReport(answer);
    } catch (error) {
      if (!isLatest()) return;
      setReport(null);
      setProblem(describeError(error));
    }
  }, [kind, id, from, to, wholeAccount, begin]);

  useEffect(() => {
    void load();
  }, [load]);

  async function downloadCsv() {
    try {
      const bytes = await api<ArrayBuffer>("GET", `${PATHS[kind]}/${id}`, {
        query: { from: report?.from, to: report?.to, format: "csv" },
        bytes: true, // byte for byte: text() would drop the BOM Excel needs
      });
      saveAs(new Uint8Array(bytes), `tsunagu-${kind}-${id}-${report?.from}-${report?.to}.csv`);
    } catch (error) {
      setProblem(describeError(error));
    }
  }

  const days = useMemo(() => (report ? everyDay(report.from, report.to) : []), [report]);
  const series = useMemo(() => {
    if (!report) return [];
    const sum = (name: string) =>
      days.map((day) =>
        report.parts.reduce((total, part) => total + (part.by_day[day]?.[name] ?? 0), 0),
      );
    return [
      { name: t("reports.people_opens"), values: sum("opened_people"), stack: "o", color: "#1f6f8b" },
      { name: t("reports.machine_opens"), values: sum("opened_machines"), stack: "o", color: "#b8c4cc" },
      { name: t("reports.people_clicks"), values: sum("clicked_people"), stack: "c", color: "#c45a00" },
      { name: t("reports.machine_clicks"), values: sum("clicked_machines"), stack: "c", color: "#e8c8a8" },
    ];
  }, [report, days, t]);

  const label = (part: Part) =>
    `${part.version === 0 ? t("reports.deployed") : `v${part.version}`}${part.node ? ` ${part.node}` : ""}`;

  return (
    <section>
      <h1>{t("reports.title")}</h1>
      <form className="filters" onSubmit={(event) => event.preventDefault()}>
        <label>
          {t("reports.kind")}
          <select
            value={view ?? kind}
            onChange={(event) => navigate(`/reports/${event.target.value}`)}
          >
            <option value="mail">{t("reports.kinds.mail")}</option>
            <option value="journey">{t("reports.kinds.journey")}</option>
            <option value="funnel">{t("reports.kinds.funnel")}</option>
            <option value="attribution">{t("reports.kinds.attribution")}</option>
          </select>
        </label>
        {!wholeAccount && (
          <label>
            {t(`reports.kinds.${kind}`)}
            <select
              value={id}
              onChange={(event) => navigate(`/reports/${kind}/${event.target.value}`)}
            >
              <option value="">{t("reports.choose")}</option>
              {choices[kind].map((choice) => (
                <option key={choice.id} value={choice.id}>
                  {choice.name && choice.name !== choice.id
                    ? t("reports.named_choice", { name: choice.name, id: choice.id })
                    : choice.id}
                </option>
              ))}
            </select>
          </label>
        )}
        <label>
          {t("reports.from")}
          <input
            type="date"
            value={from || shownRange?.from || ""}
            onChange={(event) => setFrom(event.target.value)}
          />
        </label>
        <label>
          {t("reports.to")}
          <input
            type="date"
            value={to || shownRange?.to || ""}
            onChange={(event) => setTo(event.target.value)}
          />
        </label>
        {report && (
          <button type="button" onClick={() => void downloadCsv()}>
            {t("reports.csv")}
          </button>
        )}
      </form>
      {problem && (
        <p role="alert" className="problem">
          {problem}
        </p>
      )}
      {view === "funnel" && <Funnel from={from} to={to} onRange={onRange} />}
      {view === "attribution" && <Attribution from={from} to={to} onRange={onRange} />}
      {!id && !wholeAccount && <p className="note">{t("reports.pick")}</p>}
      {report && (
        <>
          <p className="note">
            {t("reports.range", { from: report.from, to: report.to, zone: report.time_zone })}
          </p>
          {/* Nothing counted: said once, not followed by a table of zeros that says it again */}
          {report.parts.length === 0 && <p>{t("reports.nothing")}</p>}
          {report.parts.length > 0 && (
            <DailyBars days={days} series={series} label={t("reports.chart", { id })} />
          )}
          {report.parts.length > 0 && (
            <table className="list report">
              <caption>{t(`reports.caption_${report.kind}`, { id: report.id })}</caption>
              <thead>
                <tr>
                  <th scope="col">{report.kind === "journey" ? t("reports.node") : t("reports.version")}</th>
                  <th scope="col">{t("reports.sent")}</th>
                  <th scope="col">{t("reports.bounced")}</th>
                  <th scope="col">{t("reports.opened")}</th>
                  <th scope="col">{t("reports.clicked")}</th>
                  <th scope="col">{t("reports.machines")}</th>
                  <th scope="col">{t("reports.unsubscribed")}</th>
                  <th scope="col">{t("reports.decided")}</th>
                </tr>
              </thead>
              <tbody>
                {report.parts.map((part) =>
                  report.kind === "journey" && !part.node ? (
                    // A journey version as a whole (no node): its leads' conversions and MQLs
                    <tr key={`v${part.version}`} className="version-outcomes">
                      <th scope="row">{t("reports.whole_version", { version: label(part) })}</th>
                      <td colSpan={7}>
                        {t("reports.version_outcomes", {
                          converted: formats.count(part.counts.converted),
                          mqls: formats.count(part.counts.mql),
                        })}
                      </td>
                    </tr>
                  ) : (
                    <FiguresRow key={label(part)} name={label(part)} figures={part} />
                  ),
                )}
                <FiguresRow name={t("reports.total")} figures={report.total} />
              </tbody>
            </table>
          )}
          <MachineReasons figures={report.total} />
          {report.kind === "journey" && report.cost && <JourneyCost cost={report.cost} />}
          {report.kind === "journey" &&
            report.parts
              .filter((part) => part.node && (part.counts.assigned ?? 0) > 0)
              .map((part) => (
                <Experiment
                  key={`${part.version}-${part.node}`}
                  journey={report.id}
                  node={part.node ?? ""}
                  version={part.version}
                  from={report.from}
                  to={report.to}
                />
              ))}
          <details>
            <summary>{t("reports.definitions")}</summary>
            <dl className="definitions">
              {Object.entries({ ...report.definitions, ...report.rates_are }).map(([name, meaning]) => (
                <div key={name}>
                  <dt>
                    <code>{name}</code>
                  </dt>
                  <dd>{meaning}</dd>
                </div>
              ))}
            </dl>
          </details>
        </>
      )}
    </section>
  );
}

/** One version's or node's mail figures (or the total's), people's and machines' apart. */
function FiguresRow({ name, figures }: { name: string; figures: Figures }) {
  const { t } = useTranslation();
  const formats = useFormats();
  const n = (count: number | undefined) => formats.count(count ?? 0);
  return (
    <tr>
      <th scope="row">{name}</th>
      <td>{n(figures.counts.sent)}</td>
      <td>{n((figures.counts.bounced_hard ?? 0) + (figures.counts.bounced_soft ?? 0))}</td>
      <td>
        {n(figures.counts.opened_people_unique)} ({formats.percent(figures.rates.open_rate)})
      </td>
      <td>
        {n(figures.counts.clicked_people_unique)} ({formats.percent(figures.rates.click_rate)})
      </td>
      <td>
        {t("reports.machine_counts", {
          opens: n(figures.counts.opened_machines),
          clicks: n(figures.counts.clicked_machines),
        })}
      </td>
      <td>{n(figures.counts.unsubscribed)}</td>
      <td>
        {Object.entries(figures.outcomes)
          .map(([outcome, count]) => `${outcome} ${n(count)}`)
          .join(", ")}
      </td>
    </tr>
  );
}

function MachineReasons({ figures }: { figures: Figures }) {
  const { t } = useTranslation();
  const rows = (["opened", "clicked"] as const).flatMap((action) =>
    Object.entries(figures.machines_by_reason[action]).map(([reason, n]) => ({ action, reason, n })),
  );
  if (rows.length === 0) return null;
  return (
    <table className="list">
      <caption>{t("reports.reasons")}</caption>
      <thead>
        <tr>
          <th scope="col">{t("reports.activity")}</th>
          <th scope="col">{t("reports.reason")}</th>
          <th scope="col">{t("reports.count")}</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={`${row.action}-${row.reason}`}>
            <td>{t(`reports.${row.action}_by_machines`)}</td>
            <td>
              {reasonText(row.reason)} <code>{row.reason}</code>
            </td>
            <td>{row.n}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface Versus {
  arm: string;
  baseline: string;
  difference: number | null;
  interval: [number, number] | null;
  p_value: number | null;
  significant: boolean;
  more_mails_needed_per_arm?: number | null;
  more_leads_needed_per_arm?: number | null;
}

interface ExperimentAnswer {
  arms: {
    arm: string;
    assigned: number;
    sent: number;
    clicked_people_unique: number;
    click_rate: number | null;
    converted: number;
    conversion_rate: number | null;
    mqls: number;
  }[];
  versus: Versus[];
  conversions_versus: Versus[];
}

/** The control group's arm of a holdout: the baseline, sent none of the journey's mails. */
const HOLDOUT = "holdout";

/** A split's arms and the tests between them: people's clicks per mail (never opens) and
 * conversions per lead. A holdout is read as the journey's lift over its control group. */
function Experiment(props: {
  journey: string;
  node: string;
  version: number;
  from: string;
  to: string;
}) {
  const { t } = useTranslation();
  const formats = useFormats();
  const { journey, node, version, from, to } = props;
  const [found, setFound] = useState<ExperimentAnswer | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    // A refusal (days the API does not take) is shown until the next answer, never for good
    let current = true;
    setProblem(null);
    api<ExperimentAnswer>("GET", `/admin/reports/journeys/${journey}/experiments/${node}`, {
      query: { from, to, version: version || undefined },
    })
      .then((answer) => current && setFound(answer))
      .catch((error) => current && setProblem(describeError(error)));
    return () => {
      current = false;
    };
  }, [journey, node, version, from, to]);
  if (found === null) return problem ? <p className="problem">{problem}</p> : null;
  const holdout = found.arms[0]?.arm === HOLDOUT;
  // Clicks: the same sentences as ever. Conversions: per lead; for a holdout, the lift.
  const verdict = (versus: Versus, words: "clicks" | "conversions" | "lift") => {
    const prefix = { clicks: "reports", conversions: "reports.conversions", lift: "reports.lift" }[
      words
    ];
    const more =
      words === "clicks" ? versus.more_mails_needed_per_arm : versus.more_leads_needed_per_arm;
    if (versus.interval === null || versus.difference === null)
      return t(`${prefix}.too_few`, { arm: versus.arm, baseline: versus.baseline });
    return t(`${prefix}.${versus.significant ? "significant" : "not_yet"}`, {
      arm: versus.arm,
      baseline: versus.baseline,
      difference: (versus.difference * 100).toFixed(2),
      low: (versus.interval[0] * 100).toFixed(2),
      high: (versus.interval[1] * 100).toFixed(2),
      p: versus.p_value?.toFixed(4) ?? "–",
      more: more === null || more === undefined ? "–" : formats.count(more),
    });
  };
  return (
    <section className="experiment">
      <h2>{t(holdout ? "reports.holdout" : "reports.experiment", { node })}</h2>
      {problem && <p className="problem">{problem}</p>}
      <table className="list">
        <thead>
          <tr>
            <th scope="col">{t("reports.arm")}</th>
            <th scope="col">{t("reports.assigned")}</th>
            <th scope="col">{t("reports.sent")}</th>
            <th scope="col">{t("reports.clicked")}</th>
            <th scope="col">{t("reports.converted")}</th>
            <th scope="col">{t("reports.conversion_rate")}</th>
            <th scope="col">{t("reports.mqls")}</th>
          </tr>
        </thead>
        <tbody>
          {found.arms.map((arm) => (
            <tr key={arm.arm}>
              <th scope="row">
                {holdout && arm.arm === HOLDOUT
                  ? t("reports.control_group", { arm: arm.arm })
                  : arm.arm}
              </th>
              <td>{formats.count(arm.assigned)}</td>
              <td>{formats.count(arm.sent)}</td>
              <td>
                {formats.count(arm.clicked_people_unique)} ({formats.percent(arm.click_rate)})
              </td>
              <td>{formats.count(arm.converted)}</td>
              <td>{formats.percent(arm.conversion_rate)}</td>
              <td>{formats.count(arm.mqls)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!holdout &&
        found.versus.map((versus) => (
          <p key={`clicks-${versus.arm}`} className="verdict">
            {verdict(versus, "clicks")}
          </p>
        ))}
      {found.conversions_versus.map((versus) => (
        <p key={`conversions-${versus.arm}`} className="verdict">
          {verdict(versus, holdout ? "lift" : "conversions")}
        </p>
      ))}
      <p className="note">
        {holdout ? t("reports.holdout_note") : t("reports.never_on_opens")}{" "}
        {t("reports.conversions_note")}
      </p>
    </section>
  );
}

interface Choice {
  id: string;
  name: string;
}

interface FunnelAnswer {
  from: string;
  to: string;
  groups: FunnelGroup[];
  total: FunnelGroup;
}

interface FunnelGroup {
  group: string;
  stages: {
    stage: string;
    reached: number;
    conversion: number | null;
    median_days: number | null;
  }[];
}

/** The leads created in the days, stage by stage: reached, conversion, median days.
 * ``onRange``: told the days answered for (the API's default when none are chosen). */
function Funnel({
  from,
  to,
  onRange,
}: {
  from: string;
  to: string;
  onRange: (range: { from: string; to: string }) => void;
}) {
  const { t } = useTranslation();
  const [by, setBy] = useState<"channel" | "form">("channel");
  const [found, setFound] = useState<FunnelAnswer | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    // A refusal (days the API does not take) is shown above the last answer until the next
    // one, never in place of the view: the by-channel choice stays to change
    let current = true;
    setProblem(null);
    api<FunnelAnswer>("GET", "/admin/reports/funnel", { query: { from, to, by } })
      .then((answer) => {
        if (!current) return;
        setFound(answer);
        onRange({ from: answer.from, to: answer.to });
      })
      .catch((error) => current && setProblem(describeError(error)));
    return () => {
      current = false;
    };
  }, [from, to, by, onRange]);
  if (found === null) return problem ? <p className="problem">{problem}</p> : null;
  const stages = found.total.stages.map((stage) => stage.stage);
  return (
    <>
      {problem && <p className="problem">{problem}</p>}
      <p className="note">{t("reports.funnel_range", { from: found.from, to: found.to })}</p>
      <label>
        {t("reports.by")}
        <select value={by} onChange={(event) => setBy(event.target.value as "channel" | "form")}>
          <option value="channel">{t("reports.by_channel")}</option>
          <option value="form">{t("reports.by_form")}</option>
        </select>
      </label>
      <table className="list report">
        <caption>{t("reports.funnel_caption")}</caption>
        <thead>
          <tr>
            <th scope="col">{t(by === "channel" ? "reports.by_channel" : "reports.by_form")}</th>
            {stages.map((stage) => (
              <th scope="col" key={stage}>
                {t(`stages.${stage}`)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {[
            // A channel by its name (web_form: Webフォーム); a form by its id
            ...found.groups.map((group) => ({
              ...group,
              name: by === "channel" ? sourceName(group.group) : group.group,
            })),
            { ...found.total, group: "", name: t("reports.total") },
          ].map((group) => (
            <tr key={group.group}>
              <th scope="row">{group.name}</th>
              {group.stages.map((stage) => (
                <td key={stage.stage}>
                  {stage.reached}
                  {stage.conversion !== null && ` (${percent(stage.conversion)}`}
                  {stage.median_days !== null && `, ${t("reports.days", { n: stage.median_days })}`}
                  {stage.conversion !== null && ")"}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <p className="note">{t("reports.funnel_note")}</p>
    </>
  );
}
