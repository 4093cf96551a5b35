// Revenue attribution: the won deals that closed in a range of days, credited to the journeys
// and mails people opened or clicked in the look-back window before each close, by three
// models side by side; each journey's AWS cost and ROI (which need an exchange rate to put the
// revenue in US dollars). Amounts stay per currency: nothing is converted without a rate.
import { type FormEvent, useCallback, useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";

import { api, describeError } from "../api";
import { saveAs } from "../download";
import { sourceName } from "../names";
import { useLatestRequest } from "../useLatestRequest";
import { DailyBars, type Series } from "./ReportChart";

/** A journey's id on the chart's axis, as it is (a stable function: the chart redraws on change). */
const asWritten = (category: string) => category;

const MODELS = ["first_touch", "last_touch", "linear"] as const;
type Model = (typeof MODELS)[number];
const COLORS: Record<Model, string> = {
  first_touch: "#1f6f8b",
  last_touch: "#c45a00",
  linear: "#5a7d2a",
};
const DEFAULT_LOOKBACK_DAYS = 90;

/** Currency -> amount, as exact decimal text ("1350000", "33333.33"). */
type Amounts = Record<string, string>;

interface Credit {
  deals: number;
  touches: number;
  revenue: Record<Model, Amounts>;
}

interface JourneyCredit extends Credit {
  journey_id: string;
  cost_usd: string | null;
  roi: Record<Model, string | null>;
}

interface MailCredit extends Credit {
  template_id: string;
}

interface SourceCredit {
  channel: string;
  form: string;
  deals: number;
  revenue: Amounts;
}

interface AttributionAnswer {
  from: string;
  to: string;
  lookback_days: number;
  time_zone: string;
  touch: string;
  deals_won: number;
  won: Amounts;
  unattributed: { deals: number; revenue: Amounts };
  usd_rates: Record<string, string>;
  journeys: JourneyCredit[];
  mails: MailCredit[];
  sources: SourceCredit[];
}

/** Numbers in the language shown (Intl.NumberFormat); decimal text formatted exactly, never
 * through a float. Shared by the Reports screen's views. */
export function useFormats() {
  const { i18n } = useTranslation();
  const locale = i18n.language || undefined;
  return useMemo(() => {
    const whole = new Intl.NumberFormat(locale);
    const money = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
    const dollars = new Intl.NumberFormat(locale, { maximumFractionDigits: 6 });
    const ratio = new Intl.NumberFormat(locale, {
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    });
    const share = new Intl.NumberFormat(locale, {
      style: "percent",
      minimumFractionDigits: 1,
      maximumFractionDigits: 1,
    });
    // Intl.NumberFormat takes decimal text as it is (no rounding through a double); the
    // console's TypeScript library predates that signature.
    const exact = (format: Intl.NumberFormat, text: string) =>
      format.format(text as unknown as number);
    return {
      count: (n: number | null | undefined) => whole.format(n ?? 0),
      amount: (text: string, currency: string) => `${exact(money, text)} ${currency}`,
      usd: (text: string) => `${exact(dollars, text)} USD`,
      number: (text: string) => exact(dollars, text),
      ratio: (text: string) => exact(ratio, text),
      percent: (value: number | null | undefined) =>
        value === null || value === undefined ? "–" : share.format(value),
    };
  }, [locale]);
}

type Formats = ReturnType<typeof useFormats>;

/** A dash that says why there is no figure (on hover, and to a screen reader in words). */
export function Missing({ why }: { why: string }) {
  return (
    <span title={why}>
      –<span className="visually-hidden"> ({why})</span>
    </span>
  );
}

function Money({ amounts, formats }: { amounts: Amounts; formats: Formats }) {
  const entries = Object.entries(amounts);
  if (entries.length === 0) return <>0</>;
  return (
    <>
      {entries.map(([currency, amount], n) => (
        <span key={currency}>
          {n > 0 && <br />}
          {formats.amount(amount, currency)}
        </span>
      ))}
    </>
  );
}

/** The view under the Reports screen's own filters: ``from`` and ``to`` blank until chosen
 * (the API's default is the last 30 days on the stack's clock, in the account's time zone);
 * ``onRange`` is told the days answered for. */
export function Attribution({
  from,
  to,
  onRange,
}: {
  from: string;
  to: string;
  onRange?: (range: { from: string; to: string }) => void;
}) {
  const { t } = useTranslation();
  const formats = useFormats();
  const [lookback, setLookback] = useState(String(DEFAULT_LOOKBACK_DAYS));
  const [rates, setRates] = useState("");
  const [applied, setApplied] = useState({ lookback: DEFAULT_LOOKBACK_DAYS, rates: "" });
  const [model, setModel] = useState<Model | "all">("all");
  const [currency, setCurrency] = useState("");
  const [found, setFound] = useState<AttributionAnswer | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  const query = useMemo(
    () => ({ from, to, lookback_days: applied.lookback, usd_rates: applied.rates.trim() }),
    [from, to, applied],
  );

  // Only the answer to the last query asked is shown: a look-back applied (or a day typed)
  // while the last answer loads is answered first, and the older answer must not replace it
  const begin = useLatestRequest();
  const load = useCallback(async () => {
    const isLatest = begin();
    setProblem(null);
    try {
      const answer = await api<AttributionAnswer>("GET", "/admin/reports/attribution", { query });
      if (!isLatest()) return;
      setFound(answer);
      onRange?.({ from: answer.from, to: answer.to });
    } catch (error) {
      if (!isLatest()) return;
      setFound(null);
      setProblem(describeError(error));
    }
  }, [query, onRange, begin]);

  useEffect(() => {
    void load();
  }, [load]);

  function apply(event: FormEvent) {
    event.preventDefault();
    const days = Number.parseInt(lookback, 10);
    setApplied({ lookback: Number.isFinite(days) ? days : DEFAULT_LOOKBACK_DAYS, rates });
  }

  async function downloadCsv() {
    if (found === null) return;
    try {
      const bytes = await api<ArrayBuffer>("GET", "/admin/reports/attribution", {
        query: { ...query, from: found.from, to: found.to, format: "csv" },
        bytes: true, // byte for byte: text() would drop the BOM Excel needs
      });
      saveAs(new Uint8Array(bytes), `tsunagu-attribution-${found.from}-${found.to}.csv`);
    } catch (error) {
      setProblem(describeError(error));
    }
  }

  // The chart compares one currency at a time: amounts in two currencies do not add up.
  const currencies = useMemo(() => {
    const seen = new Set<string>();
    for (const journey of found?.journeys ?? [])
      for (const m of MODELS) for (const c of Object.keys(journey.revenue[m])) seen.add(c);
    return [...seen].sort();
  }, [found]);
  const shownCurrency = currencies.includes(currency) ? currency : (currencies[0] ?? "");
  const categories = useMemo(
    () => (found?.journeys ?? []).map((journey) => journey.journey_id),
    [found],
  );
  const modelName = useCallback((m: Model) => t(`reports.attribution.models.${m}`), [t]);
  const series = useMemo<Series[]>(
    () =>
      MODELS.filter((m) => model === "all" || m === model).map((m) => ({
        name: modelName(m),
        values: (found?.journeys ?? []).map((journey) =>
          Number(journey.revenue[m][shownCurrency] ?? 0),
        ),
        color: COLORS[m],
      })),
    [found, model, shownCurrency, modelName],
  );

  const roiWhy = (journey: JourneyCredit, m: Model): string => {
    if (journey.cost_usd === null) return t("reports.attribution.not_priced");
    if (Number(journey.cost_usd) === 0) return t("reports.attribution.no_cost");
    const missing = Object.keys(journey.revenue[m]).filter(
      (c) => c !== "USD" && !(c in (found?.usd_rates ?? {})),
    );
    return t("reports.attribution.no_rate", { currencies: missing.join(", ") });
  };

  return (
    <>
      <form className="filters" onSubmit={apply} aria-label={t("reports.attribution.settings")}>
        <label>
          {t("reports.attribution.lookback")}
          <input
            type="number"
            min={1}
            max={365}
            value={lookback}
            onChange={(event) => setLookback(event.target.value)}
          />
        </label>
        <label>
          {t("reports.attribution.rates")}
          <input
            type="text"
            value={rates}
            placeholder="JPY:150"
            aria-describedby="attribution-rates-hint"
            onChange={(event) => setRates(event.target.value)}
          />
        </label>
        <button type="submit">{t("reports.attribution.apply")}</button>
        {found && (
          <button type="button" onClick={() => void downloadCsv()}>
            {t("reports.csv")}
          </button>
        )}
      </form>
      <p className="note" id="attribution-rates-hint">
        {t("reports.attribution.rates_hint")}
      </p>
      {problem && (
        <p role="alert" className="problem">
          {problem}
        </p>
      )}
      {found && (
        <>
          <p className="note">
            {t("reports.attribution.range", {
              from: found.from,
              to: found.to,
              zone: found.time_zone,
              days: found.lookback_days,
            })}
          </p>
          <p className="note">
            {/* What a touch is, in the screen's words (the API's definition is English) */}
            {t("reports.attribution.explain")}
          </p>
          <dl className="facts attribution-summary">
            <dt>{t("reports.attribution.won_deals")}</dt>
            <dd>{formats.count(found.deals_won)}</dd>
            <dt>{t("reports.attribution.won_revenue")}</dt>
            <dd>
              <Money amounts={found.won} formats={formats} />
            </dd>
            <dt>{t("reports.attribution.unattributed")}</dt>
            <dd>
              {t("reports.attribution.deals", { count: found.unattributed.deals })}
              {t("reports.attribution.separator")}
              <Money amounts={found.unattributed.revenue} formats={formats} />
            </dd>
          </dl>
          {found.deals_won === 0 && <p>{t("reports.attribution.none_won")}</p>}
          {found.journeys.length > 0 && (
            <>
              <div className="filters">
                <label>
                  {t("reports.attribution.chart_model")}
                  <select
                    value={model}
                    onChange={(event) => setModel(event.target.value as Model | "all")}
                  >
                    <option value="all">{t("reports.attribution.all_models")}</option>
                    {MODELS.map((m) => (
                      <option key={m} value={m}>
                        {modelName(m)}
                      </option>
                    ))}
                  </select>
                </label>
                {currencies.length > 1 && (
                  <label>
                    {t("reports.attribution.currency")}
                    <select
                      value={shownCurrency}
                      onChange={(event) => setCurrency(event.target.value)}
                    >
                      {currencies.map((c) => (
                        <option key={c}>{c}</option>
                      ))}
                    </select>
                  </label>
                )}
              </div>
              <DailyBars
                days={categories}
                series={series}
                label={t("reports.attribution.chart", { currency: shownCurrency })}
                axisLabel={asWritten}
              />
            </>
          )}
          <table className="list report attribution-journeys">
            <caption>{t("reports.attribution.journeys_caption")}</caption>
            <thead>
              <tr>
                <CreditHeaders subject={t("reports.kinds.journey")} modelName={modelName} />
                <th scope="col">{t("reports.attribution.cost")}</th>
                {MODELS.map((m) => (
                  <th scope="col" key={m}>
                    {t("reports.attribution.roi_by", { model: modelName(m) })}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {found.journeys.length === 0 && (
                <tr>
                  <td colSpan={9}>{t("reports.attribution.no_journey")}</td>
                </tr>
              )}
              {found.journeys.map((journey) => (
                <tr key={journey.journey_id}>
                  <th scope="row">{journey.journey_id}</th>
                  <CreditCells credit={journey} formats={formats} />
                  <td className="number">
                    {journey.cost_usd === null ? (
                      <Missing why={t("reports.attribution.not_priced")} />
                    ) : (
                      formats.usd(journey.cost_usd)
                    )}
                  </td>
                  {MODELS.map((m) => (
                    <td className="number" key={m}>
                      {journey.roi[m] === null ? (
                        <Missing why={roiWhy(journey, m)} />
                      ) : (
                        formats.ratio(journey.roi[m] ?? "")
                      )}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          <p className="note">{t("reports.attribution.roi_note")}</p>
          <table className="list report attribution-mails">
            <caption>{t("reports.attribution.mails_caption")}</caption>
            <thead>
              <tr>
                <CreditHeaders subject={t("reports.kinds.mail")} modelName={modelName} />
              </tr>
            </thead>
            <tbody>
              {found.mails.length === 0 && (
                <tr>
                  <td colSpan={6}>{t("reports.attribution.no_mail")}</td>
                </tr>
              )}
              {found.mails.map((mail) => (
                <tr key={mail.template_id}>
                  <th scope="row">{mail.template_id}</th>
                  <CreditCells credit={mail} formats={formats} />
                </tr>
              ))}
            </tbody>
          </table>
          <table className="list report attribution-sources">
            <caption>{t("reports.attribution.sources_caption")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("reports.attribution.channel")}</th>
                <th scope="col">{t("reports.attribution.form")}</th>
                <th scope="col">{t("reports.attribution.deals_column")}</th>
                <th scope="col">{t("reports.attribution.won_revenue")}</th>
              </tr>
            </thead>
            <tbody>
              {(found.sources ?? []).map((source) => (
                <tr key={`${source.channel}#${source.form}`}>
                  <th scope="row">{sourceName(source.channel)}</th>
                  <td>{source.form}</td>
                  <td className="number">{formats.count(source.deals)}</td>
                  <td className="number">
                    <Money amounts={source.revenue} formats={formats} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}

/** The columns a journey's and a mail's rows share: deals, touches, revenue by each model. */
function CreditHeaders({
  subject,
  modelName,
}: {
  subject: string;
  modelName: (model: Model) => string;
}) {
  const { t } = useTranslation();
  return (
    <>
      <th scope="col">{subject}</th>
      <th scope="col">{t("reports.attribution.deals_column")}</th>
      <th scope="col">{t("reports.attribution.touches")}</th>
      {MODELS.map((m) => (
        <th scope="col" key={m}>
          {t("reports.attribution.revenue_by", { model: modelName(m) })}
        </th>
      ))}
    </>
  );
}

function CreditCells({ credit, formats }: { credit: Credit; formats: Formats }) {
  return (
    <>
      <td className="number">{formats.count(credit.deals)}</td>
      <td className="number">{formats.count(credit.touches)}</td>
      {MODELS.map((m) => (
        <td className="number" key={m}>
          <Money amounts={credit.revenue[m]} formats={formats} />
        </td>
      ))}
    </>
  );
}
