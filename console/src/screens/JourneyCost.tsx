// A journey's AWS cost at list price, per version, as the journey report estimates it from its
// counters: Step Functions transitions, Lambda invocations and SES mails. An estimate (a floor:
// retries and free tiers left out), said so beside the figures.
import { useTranslation } from "react-i18next";

import { Missing, useFormats } from "./Attribution";

export interface CostNode {
  node: string;
  kind: string;
  passes: number;
  measured: boolean;
  transitions: number;
  invocations: number;
  mails: number;
}

export interface VersionCost {
  version: number;
  priced: boolean;
  executions?: number;
  transitions?: number;
  invocations?: number;
  mails?: number;
  usd?: { step_functions: string; lambda: string; ses: string; total: string };
  prices?: Record<string, string>;
  nodes?: CostNode[];
}

export interface CostAnswer {
  total_usd: string | null;
  versions: VersionCost[];
}

export function JourneyCost({ cost }: { cost: CostAnswer }) {
  const { t } = useTranslation();
  const formats = useFormats();
  if (cost.versions.length === 0) return null;
  const version = (v: number) => (v === 0 ? t("reports.deployed") : `v${v}`);
  const prices = cost.versions.find((v) => v.prices)?.prices;
  const gigabytes = prices?.lambda_memory_gb ?? "0.5";
  const milliseconds = Math.round(Number(prices?.lambda_seconds_per_invocation ?? "0.1") * 1000);
  return (
    <section className="journey-cost">
      <h2>{t("reports.cost.title")}</h2>
      <p className="note">
        {t("reports.cost.estimate", {
          gb: formats.number(gigabytes),
          ms: formats.count(milliseconds),
        })}
      </p>
      <table className="list report cost">
        <caption>{t("reports.cost.caption")}</caption>
        <thead>
          <tr>
            <th scope="col">{t("reports.version")}</th>
            <th scope="col">{t("reports.cost.executions")}</th>
            <th scope="col">{t("reports.cost.transitions")}</th>
            <th scope="col">{t("reports.cost.invocations")}</th>
            <th scope="col">{t("reports.cost.mails")}</th>
            <th scope="col">{t("reports.cost.step_functions")}</th>
            <th scope="col">{t("reports.cost.lambda")}</th>
            <th scope="col">{t("reports.cost.ses")}</th>
            <th scope="col">{t("reports.cost.total")}</th>
          </tr>
        </thead>
        <tbody>
          {cost.versions.map((v) =>
            v.priced && v.usd ? (
              <tr key={v.version}>
                <th scope="row">{version(v.version)}</th>
                <td className="number">{formats.count(v.executions)}</td>
                <td className="number">{formats.count(v.transitions)}</td>
                <td className="number">{formats.count(v.invocations)}</td>
                <td className="number">{formats.count(v.mails)}</td>
                <td className="number">{formats.usd(v.usd.step_functions)}</td>
                <td className="number">{formats.usd(v.usd.lambda)}</td>
                <td className="number">{formats.usd(v.usd.ses)}</td>
                <td className="number">{formats.usd(v.usd.total)}</td>
              </tr>
            ) : (
              <tr key={v.version}>
                <th scope="row">{version(v.version)}</th>
                <td colSpan={8}>{t("reports.cost.not_priced")}</td>
              </tr>
            ),
          )}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row">{t("reports.total")}</th>
            <td colSpan={7} />
            <td className="number">
              {cost.total_usd === null ? (
                <Missing why={t("reports.cost.none_priced")} />
              ) : (
                formats.usd(cost.total_usd)
              )}
            </td>
          </tr>
        </tfoot>
      </table>
      {cost.versions
        .filter((v) => v.priced && v.nodes && v.nodes.length > 0)
        .map((v) => (
          <details key={v.version}>
            <summary>{t("reports.cost.per_node", { version: version(v.version) })}</summary>
            <table className="list">
              <caption>{t("reports.cost.per_node", { version: version(v.version) })}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("reports.cost.node")}</th>
                  <th scope="col">{t("reports.cost.kind")}</th>
                  <th scope="col">{t("reports.cost.passes")}</th>
                  <th scope="col">{t("reports.cost.transitions")}</th>
                  <th scope="col">{t("reports.cost.invocations")}</th>
                  <th scope="col">{t("reports.cost.mails")}</th>
                </tr>
              </thead>
              <tbody>
                {(v.nodes ?? []).map((node) => (
                  <tr key={node.node}>
                    <th scope="row">{node.node}</th>
                    <td>{node.kind}</td>
                    <td className="number">
                      {formats.count(node.passes)}{" "}
                      {t(node.measured ? "reports.cost.measured" : "reports.cost.estimated")}
                    </td>
                    <td className="number">{formats.count(node.transitions)}</td>
                    <td className="number">{formats.count(node.invocations)}</td>
                    <td className="number">{formats.count(node.mails)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        ))}
    </section>
  );
}
