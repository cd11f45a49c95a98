/**
 * Maps paths in a parsed YAML document (["plans", "release", "steps", 0, "job"]) back to
 * `file:line:col` positions and to the source text of scalars (modes are decided from the
 * token as written, not from the value YAML 1.2 gives it).
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from 'yaml';
import type { Position } from '../errors.js';

export type Path = ReadonlyArray<string | number>;

/** A YAML merge key (`<<: *anchor`): with `merge: true` its value is a symbol. */
const isMergeKey = (k: unknown): boolean => isScalar(k) && typeof k.value === 'symbol';

interface Found {
  /** The value node at the path (undefined when the path leads nowhere). */
  node?: Node;
  /** The key node of the last map segment, if the path ends in a map entry. */
  key?: Node;
  /** How many segments of the path were found. */
  depth: number;
  /** The deepest node found on the way (for a fallback position). */
  last?: Node;
  lastKey?: Node;
}

export class Locator {
  constructor(
    readonly doc: Document.Parsed,
    readonly lineCounter: LineCounter,
    /** The file name as shown to the user. */
    readonly file: string,
    readonly source: string,
  ) {}

  /** Position of a character offset in the source. */
  at(offset: number): Position {
    const { line, col } = this.lineCounter.linePos(offset);
    return { file: this.file, line, col };
  }

  private deref(n: unknown): Node | undefined {
    let cur = n;
    for (let i = 0; i < 64 && isAlias(cur); i++) cur = cur.resolve(this.doc);
    return (cur ?? undefined) as Node | undefined;
  }

  /** Per map: its explicit keys (as strings, first one wins) → pair; built on first lookup. */
  private readonly index = new WeakMap<object, { explicit: Map<string, Pair<Node, Node>>; merges: Pair<Node, Node>[] }>();

  private pairsOf(m: { items: unknown[] }): { explicit: Map<string, Pair<Node, Node>>; merges: Pair<Node, Node>[] } {
    let idx = this.index.get(m);
    if (!idx) {
      idx = { explicit: new Map(), merges: [] };
      for (const p of m.items as Pair<Node, Node>[]) {
        const k = p.key;
        if (isMergeKey(k)) {
          idx.merges.push(p);
          continue;
        }
        const kv = isScalar(k) ? k.value : k;
        if (kv === null || kv === undefined) continue;
        const name = String(kv);
        if (!idx.explicit.has(name)) idx.explicit.set(name, p);
      }
      this.index.set(m, idx);
    }
    return idx;
  }

  private pairIn(map: unknown, seg: string, seen = 0): Pair<Node, Node> | undefined {
    const m = this.deref(map);
    if (!isMap(m) || seen > 16) return undefined;
    let merged: Pair<Node, Node> | undefined;
    const { explicit, merges } = this.pairsOf(m);
    const hit = explicit.get(seg);
    if (hit) return hit;
    // YAML merge keys (<<: *anchor): explicit keys above win, then merged maps in order.
    for (const p of merges) {
      const v = this.deref(p.value);
      const sources = isSeq(v) ? v.items : [v];
      for (const s of sources) {
        merged = this.pairIn(s, seg, seen + 1);
        if (merged) return merged;
      }
    }
    return undefined;
  }

  find(path: Path): Found {
    let node = this.deref(this.doc.contents);
    let key: Node | undefined;
    const out: Found = { depth: 0, last: node };
    for (const seg of path) {
      if (!node) break;
      if (isSeq(node) && typeof seg === 'number') {
        const item = this.deref(node.items[seg]);
        if (item === undefined && node.items[seg] === undefined) break;
        node = item;
        key = undefined;
      } else if (isMap(node)) {
        const p = this.pairIn(node, String(seg));
        if (!p) break;
        key = p.key ?? undefined;
        node = this.deref(p.value);
      } else break;
      out.depth++;
      out.last = node ?? out.last;
      out.lastKey = key;
      out.node = node;
      out.key = key;
    }
    if (out.depth < path.length) {
      out.node = undefined;
      out.key = undefined;
    }
    if (path.length === 0) out.node = node;
    return out;
  }

  private nodePos(n: Node | undefined): Position | undefined {
    if (!n?.range) return undefined;
    return this.at(n.range[0]);
  }

  /** True when a value node is an empty (null) scalar: `key:` with nothing after it. */
  private isEmpty(n: Node | undefined): boolean {
    return !n || (isScalar(n) && n.value === null && (n.range ? n.range[0] === n.range[1] : true));
  }

  /** Position of the value at `path` (an empty value → its key; a missing one → the deepest ancestor found). */
  valuePos(path: Path): Position {
    const f = this.find(path);
    if (f.depth === path.length) {
      if (!this.isEmpty(f.node)) return this.nodePos(f.node)!;
      if (f.key) return this.nodePos(f.key)!;
      if (f.node?.range) return this.nodePos(f.node)!;
    }
    return this.nodePos(this.isEmpty(f.last) ? (f.lastKey ?? f.last) : f.last) ?? { file: this.file, line: 1, col: 1 };
  }

  /** Position of the key of the map entry at `path` (falls back to the value's position). */
  keyPos(path: Path): Position {
    const f = this.find(path);
    if (f.depth === path.length && f.key) return this.nodePos(f.key)!;
    return this.valuePos(path);
  }

  /** The source text of the scalar at `path`, as written (quotes included), or undefined. */
  token(path: Path): string | undefined {
    const f = this.find(path);
    if (f.depth !== path.length || !isScalar(f.node) || !f.node.range) return undefined;
    return this.source.slice(f.node.range[0], f.node.range[1]);
  }

  /** For a plain (unquoted) scalar: its source text; undefined otherwise. */
  plainText(path: Path): string | undefined {
    const f = this.find(path);
    if (f.depth !== path.length || !isScalar(f.node) || f.node.type !== 'PLAIN' || !f.node.range) return undefined;
    return this.source.slice(f.node.range[0], f.node.range[1]);
  }

  /** The keys of the map at `path`, in source order, with their positions. */
  keys(path: Path): Array<{ key: string; pos: Position }> {
    const f = this.find(path);
    const m = f.depth === path.length ? f.node : undefined;
    if (!isMap(m)) return [];
    const out: Array<{ key: string; pos: Position }> = [];
    for (const p of m.items as Pair<Node, Node>[]) {
      const k = p.key;
      const kv = isScalar(k) ? k.value : k;
      if (isMergeKey(k)) continue;
      out.push({ key: String(kv), pos: this.nodePos(k) ?? this.valuePos(path) });
    }
    return out;
  }
}
