/**
 * Groups: which tasks of a topology take part in a collective. Written as one string:
 *
 * | group | members |
 * | --- | --- |
 * | `all` (or empty) | every task of the topology |
 * | `collection` | the tasks of the caller's own collection instance |
 * | `collection:<path>` | the tasks of that collection instance (`main/g/coll_3`) |
 * | `group:<name>` | the tasks of that DDS group (`main` for tasks outside groups) |
 * | `regex:<re>` | the tasks whose whole path the regular expression matches |
 * | `tasks:<id or path>,…` | exactly these tasks, by DDS task ID or path |
 *
 * Members are ranked in the topology's expansion order (`task_2` before `task_10`). A suffix `+tools:<n>`
 * (`all+tools:1`) adds n places for tools outside the topology (`shoal coll … --id TOPOLOGY` from a
 * shell, STCI's front end); they rank after the tasks, and every member must write the same suffix.
 *
 * @module
 */

/** A task of the expanded topology, as groups need it. */
export interface GroupTask {
  path: string;
  id: string;
  groupName: string;
  collectionPath: string | null;
}

const TOOLS = /\+tools:(\d+)$/;
const FORMS = "all, collection, collection:<path>, group:<name>, regex:<re>, tasks:<id or path>,…";

/**
 * Checks `group` and writes it the one way every member writes it; `collection` becomes the caller's
 * own instance.
 *
 * @throws {RangeError} for a malformed group
 */
export function normaliseGroup(group: string | undefined, caller: { collectionPath: string }): string {
  const raw = (group ?? "").trim();
  const t = TOOLS.exec(raw);
  const base = normaliseBase(t ? raw.slice(0, t.index) : raw, caller);
  const tools = t ? Number(t[1]) : 0;
  if (tools > 1024) throw new RangeError(`Group "${raw}": at most 1024 tool places`);
  return tools > 0 ? `${base}+tools:${tools}` : base;
}

/** How many tool places a normalised group has. */
export function toolPlaces(group: string): number {
  const t = TOOLS.exec(group);
  return t ? Number(t[1]) : 0;
}

function normaliseBase(group: string, caller: { collectionPath: string }): string {
  const g = group;
  if (g === "" || g === "all") return "all";
  if (g === "collection") {
    if (!caller.collectionPath) {
      throw new RangeError(
        `Group "collection": this task is in no collection; name one with collection:<path>`,
      );
    }
    return `collection:${caller.collectionPath}`;
  }
  const m = /^(collection|group|regex|tasks):(.+)$/s.exec(g);
  if (!m) throw new RangeError(`Group "${g}" is not one of: ${FORMS}`);
  if (m[1] === "regex") {
    try {
      new RegExp(m[2]!);
    } catch (err) {
      throw new RangeError(`Group "${g}": ${(err as Error).message}`);
    }
  }
  if (m[1] === "tasks") {
    const list = m[2]!.split(",").map((s) => s.trim()).filter(Boolean);
    if (list.length === 0) throw new RangeError(`Group "${g}" lists no task`);
    return `tasks:${list.join(",")}`;
  }
  return `${m[1]}:${m[2]!.trim()}`;
}

/** The members of a normalised `group` among `tasks` (in expansion order), in rank order. */
export function selectMembers(normalised: string, tasks: readonly GroupTask[]): string[] {
  const t = TOOLS.exec(normalised);
  const group = t ? normalised.slice(0, t.index) : normalised;
  if (group === "all") return tasks.map((t) => t.path);
  const at = group.indexOf(":");
  const kind = group.slice(0, at);
  const arg = group.slice(at + 1);
  let keep: (t: GroupTask) => boolean;
  if (kind === "collection") keep = (t) => t.collectionPath === arg;
  else if (kind === "group") keep = (t) => t.groupName === arg;
  else if (kind === "regex") {
    const re = new RegExp(`^(?:${arg})$`);
    keep = (t) => re.test(t.path);
  } else if (kind === "tasks") {
    const wanted = new Set(arg.split(","));
    keep = (t) => wanted.has(t.id) || wanted.has(t.path);
  } else throw new RangeError(`Group "${group}" is not one of: ${FORMS}`);
  return tasks.filter(keep).map((t) => t.path);
}
