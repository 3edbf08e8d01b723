// Re-applying one editor's change onto a version someone else saved meanwhile: a three-way merge
// of the flow as data. What only I changed is taken from mine, what only they changed from
// theirs; where both changed the same value differently, mine is kept and the path is reported.
// Steps are matched by id, so a step added on each side is kept on both.

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const byId = (list) => Array.isArray(list) && list.every((s) => isMap(s) && typeof s.id === "string");

export function merge(base, mine, theirs, path = [], clashes = []) {
  if (same(mine, base)) return { merged: structuredClone(theirs), clashes };
  if (same(theirs, base) || same(mine, theirs)) return { merged: structuredClone(mine), clashes };
  if (isMap(base) && isMap(mine) && isMap(theirs)) {
    const merged = {};
    const keys = [...new Set([...Object.keys(theirs), ...Object.keys(mine)])];
    for (const key of keys) {
      const result = merge(base[key], mine[key], theirs[key], [...path, key], clashes).merged;
      if (result !== undefined) merged[key] = result;
    }
    return { merged, clashes };
  }
  if (byId(base) && byId(mine) && byId(theirs)) return { merged: mergeSteps(base, mine, theirs, path, clashes), clashes };
  clashes.push(path.join(".") || "(flow)");
  return { merged: structuredClone(mine), clashes };
}

function mergeSteps(base, mine, theirs, path, clashes) {
  const find = (list, id) => list.find((s) => s.id === id);
  const order = theirs.map((s) => s.id);
  mine.forEach((step, i) => {
    if (find(base, step.id) || order.includes(step.id)) return;
    const before = i > 0 ? order.indexOf(mine[i - 1].id) : -1;
    order.splice(before + 1, 0, step.id); // a step only I added goes after the step it follows in mine
  });
  const merged = [];
  for (const id of order) {
    const [b, m, t] = [find(base, id), find(mine, id), find(theirs, id)];
    if (b && !m && t && same(b, t)) continue; // I removed it, they did not touch it
    if (b && m && !t && same(b, m)) continue; // they removed it, I did not touch it
    const result = merge(b, m, t, [...path, id], clashes).merged;
    if (result !== undefined) merged.push(result);
  }
  return merged;
}
