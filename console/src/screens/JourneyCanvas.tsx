// The journey editor: the journey definition (tsunagu.journey/1) drawn as a graph with React
// Flow. Nodes are added from the palette, connected by dragging, configured in the side panel
// and deleted; the API's validation messages are shown on the node they concern. Save keeps a
// draft; the dry run puts each node's count and first send date on the canvas; publish makes a
// new version (running leads finish on theirs); versions can be rolled back.
import "@xyflow/react/dist/style.css";

import {
  Background,
  type Connection,
  Controls,
  type Edge,
  Handle,
  type Node,
  type NodeProps,
  Position,
  ReactFlow,
  type ReactFlowInstance,
} from "@xyflow/react";
import { type FormEvent, useCallback, useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useParams } from "react-router";

import { ApiError, type FieldProblem, api, describeError } from "../api";
import { type SegmentChoice, savedSegments } from "../choices";
import i18n, { when } from "../i18n";
import { useMay } from "../me";
import { StartInputFields, startInputBody, useStartInput } from "../startInput";
import { JourneySettings } from "./JourneySettings";
import { type JourneyNode, NodeFields } from "./NodeFields";
import { SendCalendar } from "./SendCalendar";

interface Definition {
  $format: string;
  journey_id: string;
  name?: string;
  description: string;
  start: string;
  nodes: JourneyNode[];
}
interface GraphView {
  which: string;
  version: number | null;
  by: string | null;
  updated_at: string;
  /** The journey's draft as it was read (0: none): saved over only if it is still that one. */
  revision: number;
  definition: Definition;
  problems: FieldProblem[];
}
interface NodeRun {
  reached: number;
  first_at: string | null;
  first_sent_at: string | null;
  outcomes: Record<string, number>;
  skipped: number;
}
interface DryRun {
  leads: number;
  nodes: Record<string, NodeRun>;
  mails: Record<string, Record<string, number>>;
  days_off: Record<string, string>;
  cost_per_thousand_entries_usd: number;
}
interface LiveStatus {
  status: string;
  parked_at_step: Record<string, number>;
  waiting_at_node: Record<string, number>;
  running: number | null;
}

/** How often the canvas's live counts are read again while it is open. */
const LIVE_EVERY_MS = 30_000;
interface Versions {
  live: number | null;
  versions: { version: number; created_at: string; note?: string | null }[];
}

/** What a new node of each kind starts as (the palette). */
const NEW_NODE: Record<string, (id: string) => JourneyNode> = {
  send: (id) => ({ id, kind: "send", label: `mail ${id}`, template: "welcome" }),
  wait: (id) => ({
    id,
    kind: "wait",
    label: `wait ${id}`,
    rule: { kind: "next_business_day", at: "10:00" },
  }),
  wait_for: (id) => ({
    id,
    kind: "wait_for",
    label: `a click ${id}`,
    events: [{ type: "link_clicked", outcome: "clicked" }],
    within_seconds: 259200,
    exits: [],
  }),
  branch: (id) => ({ id, kind: "branch", label: `branch ${id}`, cases: [] }),
  update_lead: (id) => ({ id, kind: "update_lead", label: `update ${id}`, add_tags: [] }),
  split: (id) => ({ id, kind: "split", label: `test ${id}`, paths: [] }),
  holdout: (id) => ({ id, kind: "holdout", label: `control group ${id}`, percent: 10 }),
  notify_owner: (id) => ({ id, kind: "notify_owner", label: `tell the owner ${id}`, message: "" }),
  webhook: (id) => ({ id, kind: "webhook", label: `tell the CRM ${id}`, event: "lead.journey_step" }),
  end: (id) => ({ id, kind: "end", label: "the end" }),
};

const EMPTY: Definition = {
  $format: "tsunagu.journey/1",
  journey_id: "",
  name: "",
  description: "A new journey.",
  start: "first_mail",
  nodes: [
    { id: "first_mail", kind: "send", label: "the first mail", template: "welcome", next: "done" },
    { id: "done", kind: "end", label: "the end" },
  ],
};

/** Each edge out of a node: the field it lives in, and the outcome it is taken on. */
function edgesOf(node: JourneyNode): { target: string; label?: string; field: string }[] {
  const found: { target: string; label?: string; field: string }[] = [];
  const add = (target: unknown, field: string, label?: string) => {
    if (typeof target === "string" && target) found.push({ target, field, label });
  };
  add(node.next, "next");
  add(node.timed_out, "timed_out", "timed out");
  add(node.default, "default", "otherwise");
  for (const [list, key] of [
    ["exits", "outcome"],
    ["cases", "outcome"],
    ["paths", "outcome"],
  ] as const) {
    const items = node[list];
    if (Array.isArray(items)) {
      items.forEach((item: Record<string, unknown>, index) =>
        add(item.next, `${list}.${index}`, String(item[key] ?? "")),
      );
    }
  }
  return found;
}

/** Left to right by distance from the start; nodes no edge reaches go in a last column. */
function layout(definition: Definition): Record<string, { x: number; y: number }> {
  const depth: Record<string, number> = { [definition.start]: 0 };
  const byId = Object.fromEntries(definition.nodes.map((node) => [node.id, node]));
  const queue = [definition.start];
  while (queue.length) {
    const id = queue.shift() as string;
    for (const edge of byId[id] ? edgesOf(byId[id]) : []) {
      if (depth[edge.target] === undefined && byId[edge.target]) {
        depth[edge.target] = depth[id] + 1;
        queue.push(edge.target);
      }
    }
  }
  const deepest = Math.max(0, ...Object.values(depth));
  const rows: Record<number, number> = {};
  const positions: Record<string, { x: number; y: number }> = {};
  for (const node of definition.nodes) {
    const column = depth[node.id] ?? deepest + 1;
    const row = (rows[column] = (rows[column] ?? -1) + 1);
    positions[node.id] = { x: column * 250, y: row * 140 };
  }
  return positions;
}

interface StepData extends Record<string, unknown> {
  node: JourneyNode;
  start: boolean;
  problems: string[];
  run?: NodeRun;
  parked?: number;
  waiting?: number;
  counted?: NodeCounts;
}

/** A node's last 30 days from the report counters (every version together). */
interface NodeCounts {
  sent: number;
  opened: number;
  clicked: number;
  decided: number;
}

interface JourneyReport {
  parts: { node?: string; counts: Record<string, number> }[];
}

function countsByNode(report: JourneyReport): Record<string, NodeCounts> {
  const found: Record<string, NodeCounts> = {};
  for (const part of report.parts) {
    if (!part.node) continue;
    const sum = (found[part.node] ??= { sent: 0, opened: 0, clicked: 0, decided: 0 });
    sum.sent += part.counts.sent ?? 0;
    sum.opened += part.counts.opened_people_unique ?? 0;
    sum.clicked += part.counts.clicked_people_unique ?? 0;
    sum.decided += part.counts.decided ?? 0;
  }
  return found;
}

/** As the reports bound a rate (tsunagu.reports.figures.rate): none without a whole, and never
 * above 100 % (a mail sent before the 30 days and opened in them is an open without its send). */
function share(part: number, whole: number): string {
  return whole > 0 ? `${Math.round(Math.min(Math.max(part / whole, 0), 1) * 100)}%` : "–";
}

function Step({ data, selected }: NodeProps<Node<StepData>>) {
  const { t } = useTranslation();
  const { node, problems, run, parked, waiting, counted } = data;
  return (
    <div
      className={`step step-${node.kind}${problems.length ? " invalid" : ""}${selected ? " chosen" : ""}`}
    >
      <Handle type="target" position={Position.Left} />
      <div className="kind">
        {t(`canvas.kinds.${node.kind}`, node.kind)}
        {data.start && <span className="badge">{t("canvas.start")}</span>}
      </div>
      <div className="label">{node.label}</div>
      {typeof node.template === "string" && <div className="detail">✉ {node.template}</div>}
      {run && (
        <div className="run" data-testid={`run-${node.id}`}>
          {t("canvas.reached", { count: run.reached })}
          {node.kind === "send" && run.first_sent_at && <> · ✉ {when(run.first_sent_at)}</>}
        </div>
      )}
      {waiting ? (
        <div className="waiting" data-testid={`waiting-${node.id}`}>
          {t("canvas.waiting", { count: waiting })}
        </div>
      ) : null}
      {parked ? <div className="parked">{t("canvas.parked", { count: parked })}</div> : null}
      {counted && counted.sent > 0 && (
        <div className="counted" data-testid={`counted-${node.id}`}>
          {t("canvas.counted_mail", {
            sent: counted.sent,
            opened: share(counted.opened, counted.sent),
            clicked: share(counted.clicked, counted.sent),
          })}
        </div>
      )}
      {counted && counted.decided > 0 && (
        <div className="counted" data-testid={`counted-${node.id}`}>
          {t("canvas.counted_decided", { count: counted.decided })}
        </div>
      )}
      {problems.map((problem) => (
        <div key={problem} className="node-problem" role="note">
          {problem}
        </div>
      ))}
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

const NODE_TYPES = { step: Step };

export default function JourneyCanvas() {
  const { t } = useTranslation();
  const may = useMay();
  const mayReport = may("reports.show"); // a boolean: the function is new at every render
  const navigate = useNavigate();
  const { journeyId } = useParams();
  const isNew = journeyId === undefined;
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [definition, setDefinition] = useState<Definition | null>(isNew ? EMPTY : null);
  const [view, setView] = useState<GraphView | null>(null);
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [run, setRun] = useState<DryRun | null>(null);
  const [versions, setVersions] = useState<Versions | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [positions, setPositions] = useState<Record<string, { x: number; y: number }>>({});
  // The size React Flow measured for each node, handed back with every node we derive: a node
  // given without it is hidden until measured again, and the canvas derives new nodes on every
  // keystroke and live count (a loaded browser then showed nodes that never became visible).
  const [measured, setMeasured] = useState<Record<string, { width: number; height: number }>>({});
  const [message, setMessage] = useState<string | null>(null);
  const [note, setNote] = useState("");
  const [lead, setLead] = useState("");
  const [segment, setSegment] = useState("");
  const [live, setLive] = useState<LiveStatus | null>(null);
  /** The start's input: the date-times the live version's mails read as their deadline. */
  const startInput = useStartInput(isNew ? undefined : journeyId, versions?.live);
  const [counted, setCounted] = useState<Record<string, NodeCounts>>({});
  const [enterAt, setEnterAt] = useState("");
  const editable = may("journeys.save");
  const [flow, setFlow] = useState<ReactFlowInstance<Node<StepData>> | null>(null);

  // Live: leads in the journey, those waiting at each wait node, and those held at a gate
  // while it is paused, by step - read again every half minute while the canvas is open.
  const loadLive = useCallback(() => {
    if (isNew) return;
    api<{ journeys: LiveStatus[] }>("GET", "/admin/journeys/status", {
      query: { journey: journeyId },
    })
      .then((answer) => setLive(answer.journeys[0] ?? null))
      .catch(() => setLive(null));
  }, [isNew, journeyId]);

  const load = useCallback(async () => {
    if (isNew) return;
    try {
      const shown = await api<GraphView>("GET", `/admin/journeys/${journeyId}/graph`);
      setView(shown);
      setDefinition(shown.definition);
      setProblems(shown.problems);
      setPositions(layout(shown.definition));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        setDefinition({ ...EMPTY, journey_id: journeyId ?? "" });
      } else setMessage(describeError(error));
    }
    api<Versions>("GET", `/admin/journeys/${journeyId}/versions`)
      .then(setVersions)
      .catch(() => setVersions(null));
    loadLive();
    // The last 30 days on each node, from the report counters (people's opens and clicks).
    if (mayReport) {
      api<JourneyReport>("GET", `/admin/reports/journeys/${journeyId}`)
        .then((report) => setCounted(countsByNode(report)))
        .catch(() => setCounted({}));
    }
  }, [isNew, journeyId, loadLive, mayReport]);

  useEffect(() => {
    void load();
  }, [load]);

  useEffect(() => {
    const timer = window.setInterval(loadLive, LIVE_EVERY_MS);
    return () => window.clearInterval(timer);
  }, [loadLive]);

  useEffect(() => {
    if (definition && Object.keys(positions).length === 0) setPositions(layout(definition));
  }, [definition, positions]);

  const nodes: Node<StepData>[] = useMemo(() => {
    if (!definition) return [];
    return definition.nodes.map((node) => ({
      id: node.id,
      type: "step",
      position: positions[node.id] ?? { x: 0, y: 0 },
      measured: measured[node.id],
      selected: node.id === selected,
      data: {
        node,
        start: node.id === definition.start,
        problems: problems.filter((p) => p.field === node.id).map((p) => p.message),
        run: run?.nodes[node.id],
        // The gate before a send holds its leads at the step "Send <label>"
        parked: live?.parked_at_step[`Send ${node.label}`],
        waiting: live?.waiting_at_node?.[node.id],
        counted: counted[node.id],
      },
    }));
  }, [definition, positions, measured, problems, run, selected, live, counted]);

  const edges: Edge[] = useMemo(
    () =>
      (definition?.nodes ?? []).flatMap((node) =>
        edgesOf(node).map((edge) => ({
          id: `${node.id}:${edge.field}`,
          source: node.id,
          target: edge.target,
          label: edge.label || undefined,
        })),
      ),
    [definition],
  );

  // A node added (or a graph loaded) may be off screen: show them all again.
  const nodeCount = definition?.nodes.length ?? 0;
  useEffect(() => {
    const frame = requestAnimationFrame(() => void flow?.fitView({ padding: 0.2 }));
    return () => cancelAnimationFrame(frame);
  }, [flow, nodeCount]);

  if (definition === null) {
    // What stopped it loading (a deleted journey, a bad link), not "Loading..." for good
    return message ? (
      <p role="alert" className="problem">
        {message}
      </p>
    ) : (
      <p className="loading">{t("common.loading")}</p>
    );
  }

  function change(next: Definition) {
    setDefinition(next);
    setRun(null);
  }

  function replaceNode(id: string, node: JourneyNode) {
    if (!definition) return;
    const renamed = node.id !== id;
    change({
      ...definition,
      start: renamed && definition.start === id ? node.id : definition.start,
      nodes: definition.nodes.map((one) => (one.id === id ? node : one)),
    });
    if (renamed) {
      setPositions((before) => ({ ...before, [node.id]: before[id] }));
      setSelected(node.id);
    }
  }

  function addNode(kind: string) {
    if (!definition) return;
    let number = definition.nodes.length + 1;
    while (definition.nodes.some((node) => node.id === `${kind}_${number}`)) number += 1;
    const id = `${kind}_${number}`;
    change({ ...definition, nodes: [...definition.nodes, NEW_NODE[kind](id)] });
    const column = Math.max(0, ...Object.values(positions).map((p) => p.x)) + 250;
    setPositions((before) => ({ ...before, [id]: { x: column, y: 0 } }));
    setSelected(id);
  }

  function deleteNode(id: string) {
    if (!definition) return;
    const unlinked = definition.nodes
      .filter((node) => node.id !== id)
      .map((node) => unlink(node, (target) => target === id));
    change({ ...definition, nodes: unlinked });
    setSelected(null);
  }

  function connect(connection: Connection) {
    if (!definition || !connection.source || !connection.target) return;
    const source = definition.nodes.find((node) => node.id === connection.source);
    if (!source) return;
    replaceNode(source.id, link(source, connection.target));
  }

  function removeEdges(removed: Edge[]) {
    if (!definition) return;
    let nodesNow = definition.nodes;
    for (const edge of removed) {
      const [id, field] = edge.id.split(":");
      nodesNow = nodesNow.map((node) => (node.id === id ? unlinkField(node, field) : node));
    }
    change({ ...definition, nodes: nodesNow });
  }

  async function save() {
    if (!definition) return;
    setMessage(null);
    try {
      const id = definition.journey_id;
      // Over the draft this editor read (a new journey: over none); 409 if someone saved since
      const saved = await api<GraphView>("PUT", `/admin/journeys/${id}/graph`, {
        body: { definition, revision: view?.revision ?? 0 },
      });
      setView(saved);
      setProblems(saved.problems);
      setMessage(
        saved.problems.length
          ? t("canvas.saved_with_problems", { count: saved.problems.length })
          : t("canvas.saved"),
      );
      if (isNew) navigate(`/journeys/${id}`, { replace: true });
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        // Someone saved the draft after this editor read it: saving would lose their change.
        // The edits stay on the canvas; reloading shows theirs.
        setMessage(t("canvas.changed_meanwhile"));
        return;
      }
      if (error instanceof ApiError) setProblems(error.problems);
      setMessage(describeError(error));
    }
  }

  async function dryRun() {
    if (!definition) return;
    setMessage(null);
    try {
      const result = await api<DryRun>("POST", `/admin/journeys/${definition.journey_id}/dry-run`, {
        // Blank: the leads enter now; else at the chosen time, in this browser's time zone
        body: {
          definition,
          leads: 200,
          start: enterAt ? new Date(enterAt).toISOString() : undefined,
          language: i18n.language?.startsWith("ja") ? "ja" : "en", // the holidays' names
        },
      });
      setRun(result);
      setProblems([]);
      setMessage(t("canvas.dry_run_done", { leads: result.leads }));
    } catch (error) {
      if (error instanceof ApiError) setProblems(error.problems);
      setMessage(describeError(error));
    }
  }

  async function publish(event: FormEvent) {
    event.preventDefault();
    if (!definition || !window.confirm(t("canvas.publish_confirm"))) return;
    setMessage(null);
    try {
      const answer = await api<{ version: number }>("POST", "/admin/journeys", {
        body: { definition, note: note || undefined },
      });
      setMessage(t("canvas.published", { version: answer.version }));
      await load();
    } catch (error) {
      if (error instanceof ApiError) setProblems(error.problems);
      setMessage(describeError(error));
    }
  }

  async function rollback(version: number) {
    if (!definition || !window.confirm(t("canvas.rollback_confirm", { version }))) return;
    try {
      await api("POST", `/admin/journeys/${definition.journey_id}/rollback`, { body: { version } });
      setMessage(t("canvas.rolled_back", { version }));
      await load();
    } catch (error) {
      setMessage(describeError(error));
    }
  }

  async function start(event: FormEvent) {
    event.preventDefault();
    if (!definition) return;
    try {
      const who = lead.trim() ? { lead: lead.trim() } : { segment: segment.trim() };
      const input = startInputBody(startInput);
      const body = input ? { ...who, input } : who;
      const answer = await api<{ entered: number }>(
        "POST",
        `/admin/journeys/${definition.journey_id}/entries`,
        { body },
      );
      setMessage(t("canvas.started", { count: answer.entered }));
    } catch (error) {
      setMessage(describeError(error));
    }
  }

  const chosen = definition.nodes.find((node) => node.id === selected) ?? null;
  const journeyProblems = problems.filter(
    (p) => !definition.nodes.some((node) => node.id === p.field),
  );

  return (
    <section className="canvas-screen">
      <p>
        <Link to="/journeys">← {t("journeys.title")}</Link>
      </p>
      <h1>
        {definition.name || definition.journey_id || t("canvas.new")}{" "}
        {view && (
          <small>
            {view.version ? `v${view.version}` : t(`canvas.which.${view.which}`, view.which)} ·{" "}
            {when(view.updated_at)}
          </small>
        )}
      </h1>
      {live && (
        <p className="note live-status">
          {t("canvas.live_status", {
            status: t(`journeys.statuses.${live.status}`, live.status),
            running: live.running ?? "—",
          })}
        </p>
      )}
      <div className="journey-fields">
        <label>
          {t("canvas.journey_id")}
          <input
            value={definition.journey_id}
            readOnly={!isNew || !editable}
            pattern="[a-z][a-z0-9_]*"
            onChange={(event) => change({ ...definition, journey_id: event.target.value })}
          />
        </label>
        <label>
          {t("canvas.name")}
          <input
            value={definition.name ?? ""}
            readOnly={!editable}
            onChange={(event) => change({ ...definition, name: event.target.value })}
          />
        </label>
        <label className="wide">
          {t("canvas.description")}
          <input
            value={definition.description}
            readOnly={!editable}
            onChange={(event) => change({ ...definition, description: event.target.value })}
          />
        </label>
      </div>
      {editable && (
        <div className="toolbar palette" role="toolbar" aria-label={t("canvas.palette")}>
          {Object.keys(NEW_NODE).map((kind) => (
            <button key={kind} type="button" className="secondary" onClick={() => addNode(kind)}>
              + {t(`canvas.kinds.${kind}`)}
            </button>
          ))}
        </div>
      )}
      {editable && (
        <div className="toolbar">
          <button type="button" onClick={() => void save()}>
            {t("canvas.save")}
          </button>
          <label className="inline">
            {t("canvas.enter_at")}
            <input type="datetime-local" value={enterAt} onChange={(event) => setEnterAt(event.target.value)} />
          </label>
          <button type="button" onClick={() => void dryRun()}>
            {t("canvas.dry_run")}
          </button>
        </div>
      )}
      {message && <p role="status">{message}</p>}
      {journeyProblems.map((problem) => (
        <p key={`${problem.field}:${problem.message}`} className="problem" role="alert">
          {problem.field}: {problem.message}
        </p>
      ))}
      <div className="canvas-layout">
        <div className="canvas" aria-label={t("canvas.graph")}>
          <ReactFlow
            nodes={nodes}
            edges={edges}
            nodeTypes={NODE_TYPES}
            onInit={setFlow}
            onNodeClick={(_, node) => setSelected(node.id)}
            onPaneClick={() => setSelected(null)}
            onNodesChange={(changes) => {
              for (const one of changes) {
                if (one.type === "position" && one.position) {
                  const position = one.position;
                  setPositions((before) => ({ ...before, [one.id]: position }));
                } else if (one.type === "dimensions" && one.dimensions) {
                  const size = one.dimensions;
                  setMeasured((before) => ({ ...before, [one.id]: size }));
                }
              }
            }}
            onConnect={editable ? connect : undefined}
            onEdgesDelete={editable ? removeEdges : undefined}
            nodesDraggable
            nodesConnectable={editable}
            deleteKeyCode={editable ? ["Backspace", "Delete"] : null}
            onNodesDelete={editable ? (removed) => removed.forEach((n) => deleteNode(n.id)) : undefined}
            fitView
          >
            <Background />
            <Controls showInteractive={false} />
          </ReactFlow>
        </div>
        <aside className="panel" aria-label={t("canvas.panel")}>
          {chosen ? (
            <NodePanel
              key={chosen.id}
              node={chosen}
              isStart={definition.start === chosen.id}
              editable={editable}
              sends={definition.nodes
                .filter((node) => node.kind === "send")
                .map((node) => ({ slot: String(node.result ?? node.id), label: node.label }))}
              onChange={(node) => replaceNode(chosen.id, node)}
              onStart={() => change({ ...definition, start: chosen.id })}
              onDelete={() => deleteNode(chosen.id)}
            />
          ) : (
            <p className="note">{t("canvas.choose_a_node")}</p>
          )}
          {run && (
            <section>
              <h2>{t("canvas.mails_by_day")}</h2>
              <SendCalendar mails={run.mails} daysOff={run.days_off} />
              <ul>
                {Object.entries(run.mails).map(([template, days]) => (
                  <li key={template}>
                    {template}:{" "}
                    {Object.entries(days)
                      .map(([day, count]) => `${day} × ${count}`)
                      .join(", ")}
                  </li>
                ))}
              </ul>
              {Object.keys(run.days_off).length > 0 && (
                <>
                  <h3>{t("canvas.days_off")}</h3>
                  <ul className="days-off">
                    {Object.entries(run.days_off).map(([day, name]) => (
                      <li key={day}>
                        <time dateTime={day}>{day}</time> {name === "closed" ? t("canvas.closed") : name}
                      </li>
                    ))}
                  </ul>
                </>
              )}
              <p className="note">
                {t("canvas.cost", { usd: run.cost_per_thousand_entries_usd.toFixed(4) })}
              </p>
            </section>
          )}
          {may("journeys.publish") && !isNew && (
            <form onSubmit={(event) => void publish(event)}>
              <h2>{t("canvas.publish")}</h2>
              <label>
                {t("canvas.note")}
                <input value={note} onChange={(event) => setNote(event.target.value)} />
              </label>
              <button type="submit">{t("canvas.publish")}</button>
            </form>
          )}
          {versions && versions.versions.length > 0 && (
            <section>
              <h2>{t("canvas.versions")}</h2>
              <ul>
                {versions.versions.map((one) => (
                  <li key={one.version}>
                    v{one.version} {when(one.created_at)} {one.note ?? ""}
                    {one.version === versions.live ? (
                      <strong> ({t("canvas.live")})</strong>
                    ) : (
                      may("journeys.rollback") && (
                        <button
                          type="button"
                          className="link"
                          onClick={() => void rollback(one.version)}
                        >
                          {t("canvas.rollback")}
                        </button>
                      )
                    )}
                  </li>
                ))}
              </ul>
            </section>
          )}
          {!isNew && journeyId && (
            <details className="settings" onToggle={(event) => setSettingsOpen(event.currentTarget.open)}>
              <summary>{t("journey_settings.title")}</summary>
              {/* Read when opened: most visits to the canvas are about the graph */}
              {settingsOpen && <JourneySettings journeyId={journeyId} editable={may("journeys.save")} />}
            </details>
          )}
          {may("journeys.start") && !isNew && (
            <form onSubmit={(event) => void start(event)}>
              <h2>{t("canvas.start_for_lead")}</h2>
              <label>
                {t("leads.email")}
                <input
                  type="email"
                  required={!segment.trim()}
                  value={lead}
                  onChange={(event) => setLead(event.target.value)}
                />
              </label>
              <label>
                {t("canvas.or_segment")}
                <input
                  placeholder="stage=lead,tag=seminar"
                  list="start-segments"
                  value={segment}
                  disabled={Boolean(lead.trim())}
                  onChange={(event) => setSegment(event.target.value)}
                />
              </label>
              <SavedSegmentNames id="start-segments" />
              <StartInputFields state={startInput} hintId="start-input-hint" />
              <button type="submit">{t("canvas.start_button")}</button>
            </form>
          )}
        </aside>
      </div>
    </section>
  );
}

function NodePanel(props: {
  node: JourneyNode;
  isStart: boolean;
  editable: boolean;
  sends: { slot: string; label: string }[];
  onChange: (node: JourneyNode) => void;
  onStart: () => void;
  onDelete: () => void;
}) {
  const { t } = useTranslation();
  const [text, setText] = useState(() => JSON.stringify(props.node, null, 2));
  const [problem, setProblem] = useState<string | null>(null);
  const { node } = props;
  // The JSON shows what the forms above changed too
  useEffect(() => setText(JSON.stringify(node, null, 2)), [node]);
  const set = (field: string, value: unknown) => props.onChange({ ...node, [field]: value });
  return (
    <section>
      <h2>
        {t(`canvas.kinds.${node.kind}`, node.kind)} <small>{node.id}</small>
      </h2>
      <label>
        {t("canvas.label")}
        <input
          value={node.label}
          readOnly={!props.editable}
          onChange={(event) => set("label", event.target.value)}
        />
      </label>
      <NodeFields node={node} editable={props.editable} sends={props.sends} onChange={props.onChange} />
      <details>
        <summary>{t("canvas.all_fields")}</summary>
        <label>
          {t("canvas.node_json")}
          <textarea
            rows={12}
            spellCheck={false}
            value={text}
            readOnly={!props.editable}
            onChange={(event) => setText(event.target.value)}
          />
        </label>
        {props.editable && (
          <button
            type="button"
            onClick={() => {
              try {
                props.onChange(JSON.parse(text) as JourneyNode);
                setProblem(null);
              } catch (error) {
                setProblem(String(error));
              }
            }}
          >
            {t("canvas.apply")}
          </button>
        )}
        {problem && <p className="problem">{problem}</p>}
      </details>
      {props.editable && (
        <div className="toolbar">
          {!props.isStart && (
            <button type="button" className="secondary" onClick={props.onStart}>
              {t("canvas.make_start")}
            </button>
          )}
          <button type="button" className="danger" onClick={props.onDelete}>
            {t("canvas.delete")}
          </button>
        </div>
      )}
    </section>
  );
}

/** The node with an edge to ``target``: ``next`` where it has one, else a new exit, case or
 * path, else the timed-out edge. */
function link(node: JourneyNode, target: string): JourneyNode {
  switch (node.kind) {
    case "wait_for": {
      const exits = Array.isArray(node.exits) ? node.exits : [];
      if (!node.timed_out && exits.length > 0) return { ...node, timed_out: target };
      const events = Array.isArray(node.events) ? node.events : [];
      const outcome = String((events[exits.length] as { outcome?: string })?.outcome ?? `outcome_${exits.length + 1}`);
      return { ...node, exits: [...exits, { outcome, next: target }] };
    }
    case "branch": {
      const cases = Array.isArray(node.cases) ? node.cases : [];
      if (cases.length > 0 && !node.default) return { ...node, default: target };
      return { ...node, cases: [...cases, { outcome: `case_${cases.length + 1}`, when: "stage=mql", next: target }] };
    }
    case "split": {
      const paths = Array.isArray(node.paths) ? node.paths : [];
      return { ...node, paths: [...paths, { outcome: `path_${paths.length + 1}`, percent: 50, next: target }] };
    }
    case "end":
      return node;
    default:
      return { ...node, next: target };
  }
}

function unlinkField(node: JourneyNode, field: string): JourneyNode {
  const [list, index] = field.split(".");
  if (index === undefined) {
    const { [field]: _removed, ...rest } = node;
    return rest as JourneyNode;
  }
  const items = node[list];
  return Array.isArray(items) ? { ...node, [list]: items.filter((_, i) => i !== Number(index)) } : node;
}

function unlink(node: JourneyNode, gone: (target: string) => boolean): JourneyNode {
  let result = node;
  for (const edge of edgesOf(node).reverse()) {
    if (gone(edge.target)) result = unlinkField(result, edge.field);
  }
  return result;
}

/** The saved segments' names, offered where a segment is typed (its name or a filter). */
function SavedSegmentNames({ id }: { id: string }) {
  const [found, setFound] = useState<SegmentChoice[]>([]);
  useEffect(() => {
    void savedSegments().then(setFound);
  }, []);
  return (
    <datalist id={id}>
      {found.map((segment) => (
        <option key={segment.name} value={segment.name}>
          {segment.description || segment.name}
        </option>
      ))}
    </datalist>
  );
}
