// The journey editor: the journey definition (tsunagu.journey/1) drawn as a graph with React
// Flow. Nodes are added from the palette, connected by dragging, configured in the side panel
// and deleted; the API's validation messages are shown on the node they concern. Save keeps a
// draft; the dry run puts each node's count and first send date on the canvas; publish makes a
// new version (running leads finish on theirs); versions can be rolled back.
import "@xyflow/react/dist/style.css";

import {
  Background,
  BaseEdge,
  type Connection,
  Controls,
  type Edge,
  type EdgeProps,
  getSmoothStepPath,
  Handle,
  type Node,
  type NodeProps,
  Position,
  ReactFlow,
  type ReactFlowInstance,
} from "@xyflow/react";
import { type FormEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useLocation, useNavigate, useParams } from "react-router";

import { ApiError, type FieldProblem, api, describeError, describeProblem, problemText } from "../api";
import { type SegmentChoice, savedSegments } from "../choices";
import i18n, { when } from "../i18n";
import { useMay } from "../me";
import { StartInputFields, startInputBody, useStartInput } from "../startInput";
import { useUnsavedWarning } from "../unsaved";
import { useLatestRequest } from "../useLatestRequest";
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
  /** Where the marketer put the nodes (node id -> place): kept with the definition, never
   * compiled; a node it does not name is laid out automatically. */
  layout?: Record<string, Place>;
}
interface GraphView {
  which: string;
  version: number | null;
  by: string | null;
  updated_at: string;
  /** The journey's draft as it was read (0: none): saved over only if it is still that one. */
  revision: number;
  /** The journey's name: the graph's, else its record's (a shipped graph names none). */
  name: string | null;
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
  /** Leads still going round a loop through a wait when their walk stopped, by node. */
  still_in: Record<string, number>;
  steps_per_lead_at_most: number;
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

/** What a new node of each kind starts as (the palette), named in the editor's language with
 * its id (a label names the node's states in the execution history: each must be its own). */
const NEW_NODE: Record<string, (id: string) => JourneyNode> = {
  send: (id) => ({ id, kind: "send", label: newLabel("send", id), template: "welcome" }),
  wait: (id) => ({
    id,
    kind: "wait",
    label: newLabel("wait", id),
    rule: { kind: "next_business_day", at: "10:00" },
  }),
  wait_for: (id) => ({
    id,
    kind: "wait_for",
    label: newLabel("wait_for", id),
    events: [{ type: "link_clicked", outcome: "clicked" }],
    within_seconds: 259200,
    exits: [],
  }),
  branch: (id) => ({ id, kind: "branch", label: newLabel("branch", id), cases: [] }),
  update_lead: (id) => ({ id, kind: "update_lead", label: newLabel("update_lead", id), add_tags: [] }),
  split: (id) => ({ id, kind: "split", label: newLabel("split", id), paths: [] }),
  holdout: (id) => ({ id, kind: "holdout", label: newLabel("holdout", id), percent: 10 }),
  notify_owner: (id) => ({ id, kind: "notify_owner", label: newLabel("notify_owner", id), message: "" }),
  webhook: (id) => ({ id, kind: "webhook", label: newLabel("webhook", id), event: "lead.journey_step" }),
  end: (id) => ({ id, kind: "end", label: i18n.t("canvas.starter.end") }),
};

/** The step a pause holds a node's leads at: the gate before a send holds them at "Send
 * <label>"; the gate before an update_lead, notify_owner or webhook at the step itself. */
function heldAtStep(node: JourneyNode): string {
  if (node.kind === "send") return `Send ${node.label}`;
  return ["update_lead", "notify_owner", "webhook"].includes(node.kind) ? node.label : "";
}

function newLabel(kind: string, id: string): string {
  return i18n.t(`canvas.new_label.${kind}`, { id });
}

/** What a new journey starts as: one mail, then the end, in the editor's language. */
function starter(journeyId = ""): Definition {
  return {
    $format: "tsunagu.journey/1",
    journey_id: journeyId,
    name: "",
    description: i18n.t("canvas.starter.description"),
    start: "first_mail",
    nodes: [
      { id: "first_mail", kind: "send", label: i18n.t("canvas.starter.first_mail"), template: "welcome", next: "done" },
      { id: "done", kind: "end", label: i18n.t("canvas.starter.end") },
    ],
  };
}

/** Each edge out of a node: the field it lives in, and the outcome it is taken on (named
 * outcomes before the timed-out and otherwise edges: the layout draws them in that order). */
function edgesOf(node: JourneyNode): { target: string; label?: string; field: string }[] {
  const found: { target: string; label?: string; field: string }[] = [];
  const add = (target: unknown, field: string, label?: string) => {
    if (typeof target === "string" && target) found.push({ target, field, label });
  };
  add(node.next, "next");
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
  add(node.timed_out, "timed_out");
  add(node.default, "default");
  return found;
}

/** The edges named by what takes them, not by an outcome the journey names. */
const EDGE_WORDS: Record<string, string> = {
  timed_out: "canvas.edges.timed_out",
  default: "canvas.edges.default",
};

type Place = { x: number; y: number };

/** The places to keep with the definition: the nodes there are, in whole pixels. */
function keptLayout(nodes: JourneyNode[], places: Record<string, Place>): Record<string, Place> {
  return Object.fromEntries(
    nodes
      .filter((node) => places[node.id])
      .map((node) => [node.id, { x: Math.round(places[node.id].x), y: Math.round(places[node.id].y) }]),
  );
}

/** Where the layout put the nodes, and the band each is in (a long journey is drawn in bands,
 * one under the other): an edge into a later band runs through the gap above it. */
interface Layout {
  positions: Record<string, Place>;
  band: Record<string, number>;
  gapAbove: number[];
}

/** The layout's grid: a node is 170px wide (.step), about 60px high until measured (a dry run's
 * and the live counts make it taller). */
const COLUMN = 230;
const ROW_GAP = 24;
const NODE = { width: 170, height: 64 };
const BAND_GAP = 60;
/** The scale a node's text is read at without effort; a journey drawn in one band that would
 * be shown smaller is drawn in as few bands as show it larger. */
const READABLE_SCALE = 0.75;
/** The furthest the canvas zooms out: a journey of any length can be seen whole. */
const MIN_ZOOM = 0.2;
const FIT = { padding: 0.05, minZoom: MIN_ZOOM, maxZoom: 1 };
/** The canvas at 1280x720 (the layout is made for the canvas it is shown in). */
const CANVAS = { width: 860, height: 480 };

/** Left to right by the longest way from the start (a node where branches meet is right of
 * all of them), each node in the row of the first node leading to it, branches stacked below
 * one another; nodes no edge reaches go in a last column. A journey too long for the canvas
 * is cut into bands of columns, one under the other, as many as show it largest. */
function layout(
  definition: Definition,
  canvas = CANVAS,
  heights: Record<string, number> = {},
): Layout {
  const byId = Object.fromEntries(definition.nodes.map((node) => [node.id, node]));
  const targets = (id: string) =>
    (byId[id] ? edgesOf(byId[id]) : []).map((edge) => edge.target).filter((target) => byId[target]);
  // The order nodes are reached in, and the edges that go on (not back: a loop would push its
  // nodes right without end).
  const reached: string[] = [];
  const finished: string[] = [];
  const onTheWay = new Set<string>();
  const forward: [string, string][] = [];
  const visit = (id: string) => {
    reached.push(id);
    onTheWay.add(id);
    for (const target of targets(id)) {
      if (onTheWay.has(target)) continue;
      forward.push([id, target]);
      if (!reached.includes(target)) visit(target);
    }
    onTheWay.delete(id);
    finished.push(id);
  };
  if (byId[definition.start]) visit(definition.start);
  const column: Record<string, number> = { [definition.start]: 0 };
  for (const id of [...finished].reverse()) {
    for (const [from, to] of forward) {
      if (from === id) column[to] = Math.max(column[to] ?? 0, column[id] + 1);
    }
  }
  const columns = reached.length ? Math.max(...reached.map((id) => column[id])) + 1 : 0;
  const unreached = definition.nodes.map((node) => node.id).filter((id) => column[id] === undefined);
  for (const id of unreached) column[id] = columns;
  const order = [...reached, ...unreached];
  const width = columns + (unreached.length ? 1 : 0);

  const row: Record<string, number> = {};
  for (let at = 0; at < width; at += 1) {
    const here = order.filter((id) => column[id] === at);
    const wanted = (id: string) => {
      const from = forward.filter(([, to]) => to === id).map(([source]) => row[source] ?? 0);
      return from.length ? Math.min(...from) : 0;
    };
    here.sort((a, b) => wanted(a) - wanted(b) || order.indexOf(a) - order.indexOf(b));
    let last = -1;
    for (const id of here) last = row[id] = Math.max(wanted(id), last + 1);
  }

  // Bands: cut where fewest edges cross; as few bands as show the journey readably.
  const crossing = (cut: number) =>
    forward.filter(([from, to]) => column[from] < cut && column[to] >= cut).length;
  const bandsOf = (count: number) => {
    const cuts = [0];
    for (let band = 1; band < count; band += 1) {
      const aim = Math.round((band * width) / count);
      const options = [aim, aim - 1, aim + 1].filter((cut) => cut > cuts[cuts.length - 1] && cut < width);
      if (options.length) cuts.push(options.reduce((best, cut) => (crossing(cut) < crossing(best) ? cut : best)));
    }
    return [...cuts, width];
  };
  const arranged = (count: number) => {
    const cuts = bandsOf(count);
    const positions: Record<string, Place> = {};
    const band: Record<string, number> = {};
    const gapAbove: number[] = [];
    let top = 0;
    let widest = 0;
    for (let at = 0; at + 1 < cuts.length; at += 1) {
      const ids = order.filter((id) => column[id] >= cuts[at] && column[id] < cuts[at + 1]);
      if (!ids.length) continue;
      gapAbove.push(top - BAND_GAP / 2);
      // Each row as high as its highest node
      const first = Math.min(...ids.map((id) => row[id]));
      const last = Math.max(...ids.map((id) => row[id]));
      for (let line = first; line <= last; line += 1) {
        const inLine = ids.filter((id) => row[id] === line);
        for (const id of inLine) {
          positions[id] = { x: (column[id] - cuts[at]) * COLUMN, y: top };
          band[id] = gapAbove.length - 1;
        }
        top += Math.max(NODE.height, ...inLine.map((id) => heights[id] ?? 0)) + ROW_GAP;
      }
      widest = Math.max(widest, (cuts[at + 1] - cuts[at] - 1) * COLUMN + NODE.width);
      top += BAND_GAP - ROW_GAP;
    }
    const scale = Math.min(canvas.width / widest, canvas.height / (top - BAND_GAP), 1);
    return { layout: { positions, band, gapAbove }, scale };
  };
  let best = arranged(1);
  for (let count = 2; count <= width && best.scale < READABLE_SCALE; count += 1) {
    const next = arranged(count);
    if (next.scale > best.scale) best = next;
  }
  return best.layout;
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
  /** Sent less bounced (hard and soft): what the reports' open and click rates are of. */
  notBounced: number;
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
    const sum = (found[part.node] ??= { sent: 0, notBounced: 0, opened: 0, clicked: 0, decided: 0 });
    sum.sent += part.counts.sent ?? 0;
    sum.notBounced +=
      (part.counts.sent ?? 0) - (part.counts.bounced_hard ?? 0) - (part.counts.bounced_soft ?? 0);
    sum.opened += part.counts.opened_people_unique ?? 0;
    sum.clicked += part.counts.clicked_people_unique ?? 0;
    sum.decided += part.counts.decided ?? 0;
  }
  return found;
}

/** A rate as the reports compute it (tsunagu.reports.figures: open and click rates are of the
 * mails not bounced), of a node's counts summed over its versions (the API gives one rate per
 * version and node): none without a whole, and never above 100 % (a mail sent before the 30
 * days and opened in them is an open without its send). */
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
            opened: share(counted.opened, counted.notBounced),
            clicked: share(counted.clicked, counted.notBounced),
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

/** An edge into a later band: out to the right, through the gap above the target's band, in
 * from the left (drawn straight, it would cross the nodes of the band it leaves); its label in
 * the gap by its source, where the outcome is decided. */
function WrapEdge(props: EdgeProps<Edge<{ gapY: number }>>) {
  const [path] = getSmoothStepPath({
    sourceX: props.sourceX,
    sourceY: props.sourceY,
    sourcePosition: props.sourcePosition,
    targetX: props.targetX,
    targetY: props.targetY,
    targetPosition: props.targetPosition,
    centerY: props.data?.gapY,
  });
  return (
    <BaseEdge
      path={path}
      label={props.label}
      labelX={props.sourceX - 36}
      labelY={props.data?.gapY}
      markerEnd={props.markerEnd}
      style={props.style}
    />
  );
}

const EDGE_TYPES = { wrap: WrapEdge };

/** The canvas a new journey's first save keeps when its address becomes the journey's own. */
type KeptCanvas = { canvas?: string } | null;

/** One canvas per journey. Opening another journey (a link, an address typed or pasted) starts
 * on a clean canvas, not with the last one's selected node, dry run, versions, live counts and
 * messages (React Router keeps a screen's state when only its parameters change). A new
 * journey's first save replaces its address and keeps its canvas, and its "saved" message. */
export default function JourneyCanvasScreen() {
  const { journeyId } = useParams();
  const location = useLocation();
  const kept = (location.state as KeptCanvas)?.canvas;
  const canvas = kept ?? (journeyId === undefined ? `new:${location.key}` : `journey:${journeyId}`);
  return <JourneyCanvas key={canvas} canvas={canvas} />;
}

function JourneyCanvas({ canvas }: { canvas: string }) {
  const { t } = useTranslation();
  const may = useMay();
  const mayReport = may("reports.show"); // a boolean: the function is new at every render
  const navigate = useNavigate();
  const { journeyId } = useParams();
  const isNew = journeyId === undefined;
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [definition, setDefinition] = useState<Definition | null>(() => (isNew ? starter() : null));
  const [view, setView] = useState<GraphView | null>(null);
  // The journey as last read or saved: while the canvas differs, leaving it asks first
  const [stored, setStored] = useState<Definition | null>(definition);
  useUnsavedWarning(
    useMemo(() => definition !== null && JSON.stringify(definition) !== JSON.stringify(stored), [definition, stored]),
  );
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [run, setRun] = useState<DryRun | null>(null);
  const [versions, setVersions] = useState<Versions | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [positions, setPositions] = useState<Record<string, Place>>({});
  const positionsNow = useRef(positions);
  positionsNow.current = positions;
  const [bands, setBands] = useState<Pick<Layout, "band" | "gapAbove">>({ band: {}, gapAbove: [] });
  const canvasBox = useRef<HTMLDivElement>(null);
  // The layout follows the journey (and each node's size) until a node is moved by hand; the
  // view is fitted to it until the view is moved by hand (both again when the journey is read).
  const movedByHand = useRef({ node: false, view: false });
  const [fitAsked, setFitAsked] = useState(0);
  // The size React Flow measured for each node, handed back with every node we derive: a node
  // given without it is hidden until measured again, and the canvas derives new nodes on every
  // keystroke and live count (a loaded browser then showed nodes that never became visible).
  const [measured, setMeasured] = useState<Record<string, { width: number; height: number }>>({});
  const [message, setMessage] = useState<string | null>(null);
  const [note, setNote] = useState("");
  const [lead, setLead] = useState("");
  const [segment, setSegment] = useState("");
  const [segmentStart, setSegmentStart] = useState<SegmentStart | null>(null);
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
      // A shipped graph names no journey: it is named as the journey list names it
      const { definition: read, name } = shown;
      const named = read.name || !name ? read : { ...read, name };
      setDefinition(named);
      setStored(named);
      setProblems(shown.problems);
      movedByHand.current = { node: false, view: false };
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        const fresh = starter(journeyId);
        setDefinition(fresh);
        setStored(fresh);
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
    if (!definition || (movedByHand.current.node && Object.keys(positions).length > 0)) return;
    const box = canvasBox.current;
    const heights = Object.fromEntries(Object.entries(measured).map(([id, size]) => [id, size.height]));
    const placed = layout(
      definition,
      box ? { width: box.clientWidth, height: box.clientHeight } : CANVAS,
      heights,
    );
    // Where the marketer put the nodes comes first; the layout places the others
    const kept = keptLayout(definition.nodes, definition.layout ?? {});
    const wanted = { ...placed.positions, ...kept };
    if (JSON.stringify(wanted) === JSON.stringify(positions)) return;
    setPositions(wanted);
    // (Bands are the layout's: nodes placed by hand are not drawn in them.)
    setBands(Object.keys(kept).length ? { band: {}, gapAbove: [] } : { band: placed.band, gapAbove: placed.gapAbove });
    if (!movedByHand.current.view) setFitAsked((times) => times + 1);
  }, [definition, measured, positions]);

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
        problems: problems.filter((p) => p.field === node.id).map(problemText),
        run: run?.nodes[node.id],
        parked: live?.parked_at_step[heldAtStep(node)],
        waiting: live?.waiting_at_node?.[node.id],
        counted: counted[node.id],
      },
    }));
  }, [definition, positions, measured, problems, run, selected, live, counted]);

  const edges: Edge[] = useMemo(() => {
    const all = (definition?.nodes ?? []).flatMap((node) =>
      edgesOf(node).map((edge) => {
        const into = bands.band[edge.target];
        const wraps = into !== undefined && into > (bands.band[node.id] ?? into);
        return { node, edge, into: wraps ? into : undefined };
      }),
    );
    // The edges into one band each run a little apart in its gap, their labels too
    const wrapping = (band: number | undefined) => all.filter((one) => one.into === band);
    return all.map(({ node, edge, into }) => {
      const together = wrapping(into);
      const apart = (together.findIndex((one) => one.edge === edge) - (together.length - 1) / 2) * 16;
      return {
        id: `${node.id}:${edge.field}`,
        source: node.id,
        target: edge.target,
        // An outcome's own name; the timed-out and otherwise edges in the reader's words
        label: edge.label || (edge.field in EDGE_WORDS ? t(EDGE_WORDS[edge.field]) : undefined),
        ...(into !== undefined ? { type: "wrap", data: { gapY: bands.gapAbove[into] + apart } } : {}),
      };
    });
  }, [definition, bands, t]);

  // A node added (or the journey laid out again) may be off screen: show them all again (React
  // Flow fits once the nodes are measured).
  const nodeCount = definition?.nodes.length ?? 0;
  useEffect(() => {
    void flow?.fitView(FIT);
  }, [flow, nodeCount, fitAsked]);

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

  /** A node moved by hand: every node's place goes with the definition from then on, so a save
   * or a publish keeps them (not an edit of the journey: a dry run's counts stay). */
  function keepPlaces(places: Record<string, Place>) {
    setDefinition((now) => {
      if (!now) return now;
      const layout = keptLayout(now.nodes, places);
      return JSON.stringify(layout) === JSON.stringify(now.layout) ? now : { ...now, layout };
    });
  }

  function replaceNode(id: string, node: JourneyNode) {
    if (!definition) return;
    const renamed = node.id !== id;
    const nodes = definition.nodes.map((one) => (one.id === id ? node : one));
    const { [id]: place, ...others } = definition.layout ?? {};
    change({
      ...definition,
      start: renamed && definition.start === id ? node.id : definition.start,
      nodes,
      // A renamed node keeps its place
      ...(definition.layout && renamed && place ? { layout: { ...others, [node.id]: place } } : {}),
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
    const column = Math.max(0, ...Object.values(positions).map((p) => p.x)) + COLUMN;
    const place = { x: column, y: 0 };
    change({
      ...definition,
      nodes: [...definition.nodes, NEW_NODE[kind](id)],
      ...(definition.layout ? { layout: { ...definition.layout, [id]: place } } : {}),
    });
    setPositions((before) => ({ ...before, [id]: place }));
    setSelected(id);
  }

  function deleteNode(id: string) {
    if (!definition) return;
    const unlinked = definition.nodes
      .filter((node) => node.id !== id)
      .map((node) => unlink(node, (target) => target === id));
    change({
      ...definition,
      nodes: unlinked,
      ...(definition.layout ? { layout: keptLayout(unlinked, definition.layout) } : {}),
    });
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
      setStored(definition);
      setProblems(saved.problems);
      setMessage(
        saved.problems.length
          ? t("canvas.saved_with_problems", { count: saved.problems.length })
          : t("canvas.saved"),
      );
      if (isNew) navigate(`/journeys/${id}`, { replace: true, state: { canvas } satisfies KeptCanvas });
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
      // Over the draft this editor read: 409, nothing published, if someone saved it since (a
      // version published over it would hide their draft for good)
      const answer = await api<{ version: number }>("POST", "/admin/journeys", {
        body: { definition, note: note || undefined, revision: view?.revision ?? 0 },
      });
      setMessage(t("canvas.published", { version: answer.version }));
      await load();
    } catch (error) {
      if (error instanceof ApiError && error.revision !== undefined) {
        // The canvas was kept as the draft, then the publish refused (another publication
        // holding the journey...): go on from the draft's new revision, or the next save is
        // refused as if a colleague had saved meanwhile
        const kept = error.revision;
        setView((before) => (before ? { ...before, revision: kept } : before));
        setStored(definition);
        setProblems(error.problems);
        setMessage(t("canvas.kept_not_published", { reason: describeError(error) }));
        return;
      }
      if (error instanceof ApiError && error.status === 409) {
        // Their draft saved, or their version published, meanwhile: the canvas stays as it
        // is; reloading shows theirs
        setMessage(t("canvas.publish_changed_meanwhile"));
        return;
      }
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
      const answer = await api<LeadStarted | SegmentStart>(
        "POST",
        `/admin/journeys/${definition.journey_id}/entries`,
        { body },
      );
      if ("start_id" in answer) {
        // A segment: started in the background (202); its progress is followed below the form
        setMessage(null);
        setSegmentStart(answer);
        return;
      }
      setMessage(
        answer.already_in
          ? t("canvas.started_already_in", { count: answer.entered, already: answer.already_in })
          : t("canvas.started", { count: answer.entered }),
      );
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
          {live.running === null
            ? t("canvas.live_status_uncounted", { status: t(`journeys.statuses.${live.status}`, live.status) })
            : t("canvas.live_status", {
                status: t(`journeys.statuses.${live.status}`, live.status),
                count: live.running,
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
          {describeProblem(problem)}
        </p>
      ))}
      <div className="canvas-layout">
        <div className="canvas" aria-label={t("canvas.graph")} ref={canvasBox}>
          <ReactFlow
            nodes={nodes}
            edges={edges}
            nodeTypes={NODE_TYPES}
            edgeTypes={EDGE_TYPES}
            onInit={setFlow}
            onMoveStart={(event) => {
              if (event) movedByHand.current.view = true; // a wheel or a drag, not a fit
            }}
            onNodeClick={(_, node) => setSelected(node.id)}
            onPaneClick={() => setSelected(null)}
            onNodesChange={(changes) => {
              let places = positionsNow.current;
              let dragged = false;
              for (const one of changes) {
                if (one.type === "position" && one.position) {
                  if (one.dragging) movedByHand.current.node = dragged = true;
                  const position = one.position;
                  places = { ...places, [one.id]: position };
                  setPositions((before) => ({ ...before, [one.id]: position }));
                } else if (one.type === "dimensions" && one.dimensions) {
                  const size = one.dimensions;
                  setMeasured((before) => ({ ...before, [one.id]: size }));
                }
              }
              if (dragged && editable) keepPlaces(places);
            }}
            onConnect={editable ? connect : undefined}
            onEdgesDelete={editable ? removeEdges : undefined}
            nodesDraggable
            nodesConnectable={editable}
            deleteKeyCode={editable ? ["Backspace", "Delete"] : null}
            onNodesDelete={editable ? (removed) => removed.forEach((n) => deleteNode(n.id)) : undefined}
            minZoom={MIN_ZOOM}
            fitView
            fitViewOptions={FIT}
          >
            <Background />
            <Controls showInteractive={false} fitViewOptions={FIT} orientation="horizontal" />
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
              {Object.entries(run.still_in).map(([node, leads]) => (
                <p key={node} className="note" role="status">
                  {t("canvas.still_in", { leads, node, steps: run.steps_per_lead_at_most })}
                </p>
              ))}
              <p className="note">
                {t("canvas.cost", { usd: run.cost_per_thousand_entries_usd.toFixed(4) })}
              </p>
              <p className="note">{t("canvas.synthetic_leads")}</p>
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
          {versions && versions.versions.length === 0 && (
            <section>
              <h2>{t("canvas.versions")}</h2>
              <p className="note">
                {view?.which === "shipped" ? t("canvas.no_versions_shipped") : t("canvas.no_versions")}
              </p>
            </section>
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
              {segmentStart && (
                <SegmentStartProgress
                  key={segmentStart.start_id}
                  journeyId={definition.journey_id}
                  queued={segmentStart}
                />
              )}
            </form>
          )}
          {may("journeys.list") && !isNew && journeyId && (
            <RecentStarts
              journeyId={journeyId}
              shownAbove={segmentStart?.start_id ?? null}
              reload={segmentStart?.start_id ?? null}
            />
          )}
        </aside>
      </div>
    </section>
  );
}

type LeadStarted = { entered: number; already_in: number };

/** A start for a segment, run in the background: one shape wherever the API shows it (the
 * 202 of POST .../entries, GET .../starts/{id}, the items of GET .../starts). */
type SegmentStart = {
  start_id: string;
  segment: string;
  by: string;
  at: string;
  status: "queued" | "running" | "done" | "failed";
  done: boolean;
  selected: number;
  entered: number;
  already_in: number;
  not_entered: number;
  failed: number;
  error: string | null;
  /** Not done, and nothing written for 15 minutes: what ran it has stopped without a word. */
  stale: boolean;
};

const START_POLL_MS = 1500;

/** The start as last read, asked again every START_POLL_MS while it runs; the asking stops when
 * it is done or stale (it will not move again), when the API refuses (gone, not allowed), and
 * when the component is unmounted. ``shown`` is the start as the caller last read it. */
function useFollowedStart(
  journeyId: string,
  shown: SegmentStart,
): { job: SegmentStart; problem: string | null } {
  const [job, setJob] = useState<SegmentStart>(shown);
  const [problem, setProblem] = useState<string | null>(null);
  // A start read again by the caller (the list reloaded) replaces what this one read
  useEffect(() => setJob(shown), [shown]);
  const settled = shown.done || shown.stale;

  useEffect(() => {
    if (settled) return;
    let stopped = false;
    let timer: number | undefined;
    async function ask() {
      try {
        const path = `/admin/journeys/${encodeURIComponent(journeyId)}/starts/${encodeURIComponent(shown.start_id)}`;
        const found = await api<SegmentStart>("GET", path);
        if (stopped) return;
        setJob(found);
        setProblem(null);
        // A stale start will not move again: following it would poll for ever
        if (!found.done && !found.stale) timer = window.setTimeout(() => void ask(), START_POLL_MS);
      } catch (error) {
        if (stopped) return;
        setProblem(describeError(error));
        // The API refusing (gone, not allowed) is final; a network or server failure may pass
        const refused = error instanceof ApiError && error.status >= 400 && error.status < 500;
        if (!refused) timer = window.setTimeout(() => void ask(), START_POLL_MS * 2);
      }
    }
    timer = window.setTimeout(() => void ask(), START_POLL_MS);
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [journeyId, shown.start_id, settled]);

  return { job, problem };
}

/** What a start's sentences read: its counts, and its error (empty when none). */
function startCounts(job: SegmentStart) {
  return {
    selected: job.selected,
    entered: job.entered,
    already: job.already_in,
    not_entered: job.not_entered,
    failed: job.failed,
    error: job.error ?? "",
  };
}

/** How far a start for a segment is, asked again until it is done; then its counts. */
function SegmentStartProgress({ journeyId, queued }: { journeyId: string; queued: SegmentStart }) {
  const { t } = useTranslation();
  const { job, problem } = useFollowedStart(journeyId, queued);
  const counts = startCounts(job);
  return (
    <div className="segment-start" role="status" aria-live="polite">
      {!job.done && !job.stale && <progress aria-label={t("canvas.segment_start_running_label")} />}
      <p>
        {job.stale && t("canvas.segment_start_stale", counts)}
        {!job.stale && job.status === "queued" && t("canvas.segment_start_queued")}
        {!job.stale && job.status === "running" && t("canvas.segment_start_running", counts)}
        {job.status === "done" && t("canvas.segment_start_done", counts)}
        {job.status === "failed" && t("canvas.segment_start_failed", counts)}
      </p>
      {job.status === "done" && job.failed > 0 && <p>{t("canvas.segment_start_failed_leads", counts)}</p>}
      {problem && <p className="problem">{problem}</p>}
    </div>
  );
}

/** How many of a journey's starts the page lists at a time. */
const RECENT_STARTS = 5;

type StartsPage = { items: SegmentStart[]; next_before: string | null };

/** The journey's starts for a segment, newest first, a few at a time ("Show more" reads the
 * next few): for a marketer who started one, left the page and came back. A start still
 * running is followed as the start form follows its own. ``shownAbove``: the start the form
 * above follows, left out here; ``reload``: changes when a start is made, to list it. */
function RecentStarts({
  journeyId,
  shownAbove,
  reload,
}: {
  journeyId: string;
  shownAbove: string | null;
  reload: string | null;
}) {
  const { t } = useTranslation();
  const [starts, setStarts] = useState<SegmentStart[] | null>(null);
  const [nextBefore, setNextBefore] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const path = `/admin/journeys/${encodeURIComponent(journeyId)}/starts`;
  // "Show more" goes on from the list shown when it was asked for: the list read again since
  // (a start made) begins with the new start, and the page, put after it, skipped the start
  // pushed off the first page by it
  const morePage = useLatestRequest();

  useEffect(() => {
    let stopped = false;
    api<StartsPage>("GET", path, { query: { limit: RECENT_STARTS } })
      .then((page) => {
        if (stopped) return;
        morePage(); // a page on its way was asked of the list shown until now
        setStarts(page.items);
        setNextBefore(page.next_before);
        setProblem(null);
      })
      .catch((error: unknown) => {
        if (stopped) return;
        // A journey only drafted has no record yet, so no starts: nothing is wrong
        if (error instanceof ApiError && error.status === 404) {
          morePage();
          setStarts([]);
          setNextBefore(null);
          setProblem(null);
          return;
        }
        setProblem(describeError(error));
      });
    return () => {
      stopped = true;
    };
  }, [path, reload, morePage]);

  async function more() {
    if (!nextBefore) return;
    const isLatest = morePage();
    try {
      const page = await api<StartsPage>("GET", path, {
        query: { limit: RECENT_STARTS, before: nextBefore },
      });
      if (!isLatest()) return;
      setStarts((shown) => [...(shown ?? []), ...page.items]);
      setNextBefore(page.next_before);
      setProblem(null);
    } catch (error) {
      if (isLatest()) setProblem(describeError(error));
    }
  }

  const listed = (starts ?? []).filter((job) => job.start_id !== shownAbove);
  return (
    <section className="recent-starts">
      <h2>{t("canvas.recent_starts")}</h2>
      {starts && listed.length === 0 && !nextBefore && <p className="note">{t("canvas.no_starts")}</p>}
      {listed.length > 0 && (
        <ul>
          {listed.map((job) => (
            <StartItem key={job.start_id} journeyId={journeyId} shown={job} />
          ))}
        </ul>
      )}
      {nextBefore && (
        <button type="button" className="link" onClick={() => void more()}>
          {t("common.more")}
        </button>
      )}
      {problem && <p className="problem">{problem}</p>}
    </section>
  );
}

/** One start in the list: when, by whom, for which segment, how it stands and its counts. */
function StartItem({ journeyId, shown }: { journeyId: string; shown: SegmentStart }) {
  const { t } = useTranslation();
  const { job, problem } = useFollowedStart(journeyId, shown);
  const status = job.stale ? "stale" : job.status;
  return (
    <li className="start-item" data-start={job.start_id}>
      <div>
        {when(job.at)} · {job.by} · <code>{job.segment}</code> ·{" "}
        <strong className={`start-status ${status}`}>{t(`canvas.start_status.${status}`)}</strong>
        {!job.done && !job.stale && <progress aria-label={t("canvas.segment_start_running_label")} />}
      </div>
      <div>{t("canvas.start_counts", startCounts(job))}</div>
      {job.error && <div className="problem">{job.error}</div>}
      {problem && <div className="problem">{problem}</div>}
    </li>
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
