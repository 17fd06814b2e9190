/**
 * Optimal assignment (the "Hungarian" step of every matching metric): a shortest-augmenting-path
 * solver of the Jonker–Volgenant family for dense rectangular cost matrices.
 *
 * Crouse, "On implementing 2D rectangular assignment algorithms" (IEEE TAES 2016) — the algorithm
 * behind scipy.optimize.linear_sum_assignment; we follow its search order, so ties resolve as there.
 * O(r²·c) for r ≤ c.
 *
 * Why not the `munkres` npm package: it is correct and about 2× faster on random 1,000×1,000
 * matrices (23 vs 42 ms, `deno task bench --only hungarian`), but when several assignments are
 * optimal it picks another one than scipy in 4 of 133 tie-heavy test matrices, and the public
 * evaluation scripts we must equal use scipy: a tie decides which nuclei pair up. This solver
 * picks scipy's assignment in all 200 (tests/fixtures/hungarian_scipy.json).
 */

/** One assignment: row index → column index, rows ascending. */
export interface Assignment {
  readonly rows: Int32Array;
  readonly cols: Int32Array;
}

/**
 * Minimum-cost assignment of a dense `rows × cols` matrix (row-major `cost`). Every row (or every
 * column, whichever is fewer) is assigned. Costs must be finite.
 */
export const linearSumAssignment = (cost: Float64Array, rows: number, cols: number, maximize = false): Assignment => {
  if (cost.length !== rows * cols) {
    throw new RangeError(`linearSumAssignment: ${rows}×${cols} needs ${rows * cols} costs, got ${cost.length}`);
  }
  if (rows === 0 || cols === 0) return { rows: new Int32Array(0), cols: new Int32Array(0) };
  // work on r ≤ c: transpose a tall matrix
  const transpose = rows > cols;
  const r = transpose ? cols : rows, c = transpose ? rows : cols;
  const C = new Float64Array(r * c);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) {
      const v = transpose ? (cost[j * cols + i] as number) : (cost[i * cols + j] as number);
      if (!Number.isFinite(v)) throw new RangeError("linearSumAssignment: costs must be finite");
      C[i * c + j] = maximize ? -v : v;
    }
  }
  const col4row = solve(C, r, c);
  const out = { rows: new Int32Array(r), cols: new Int32Array(r) };
  if (!transpose) {
    for (let i = 0; i < r; i++) [out.rows[i], out.cols[i]] = [i, col4row[i] as number];
    return out;
  }
  // transposed: report in ascending original-row order
  const order = Array.from({ length: r }, (_, i) => i).sort((a, b) => (col4row[a] as number) - (col4row[b] as number));
  order.forEach((i, k) => [out.rows[k], out.cols[k]] = [col4row[i] as number, i]);
  return out;
};

/** Shortest augmenting paths, one row at a time, with dual variables u (rows) and v (columns). */
const solve = (C: Float64Array, r: number, c: number): Int32Array => {
  const u = new Float64Array(r), v = new Float64Array(c);
  const shortest = new Float64Array(c);
  const path = new Int32Array(c).fill(-1);
  const col4row = new Int32Array(r).fill(-1), row4col = new Int32Array(c).fill(-1);
  const SR = new Uint8Array(r), SC = new Uint8Array(c);
  const remaining = new Int32Array(c);
  for (let curRow = 0; curRow < r; curRow++) {
    // Dijkstra-like search for the cheapest augmenting path from curRow to a free column
    let minVal = 0, i = curRow, sink = -1, nRemaining = c;
    for (let it = 0; it < c; it++) remaining[it] = c - it - 1;
    SR.fill(0);
    SC.fill(0);
    shortest.fill(Infinity);
    while (sink === -1) {
      let index = -1, lowest = Infinity;
      SR[i] = 1;
      const ui = u[i] as number, base = i * c;
      for (let it = 0; it < nRemaining; it++) {
        const j = remaining[it] as number;
        const reduced = minVal + (C[base + j] as number) - ui - (v[j] as number);
        if (reduced < (shortest[j] as number)) {
          path[j] = i;
          shortest[j] = reduced;
        }
        const s = shortest[j] as number;
        if (s < lowest || (s === lowest && row4col[j] === -1)) {
          lowest = s;
          index = it;
        }
      }
      minVal = lowest;
      if (minVal === Infinity) throw new RangeError("linearSumAssignment: infeasible cost matrix");
      const j = remaining[index] as number;
      if (row4col[j] === -1) sink = j;
      else i = row4col[j] as number;
      SC[j] = 1;
      remaining[index] = remaining[--nRemaining] as number;
    }
    // update the duals
    u[curRow] = (u[curRow] as number) + minVal;
    for (let k = 0; k < r; k++) {
      if (SR[k] && k !== curRow) u[k] = (u[k] as number) + minVal - (shortest[col4row[k] as number] as number);
    }
    for (let j = 0; j < c; j++) if (SC[j]) v[j] = (v[j] as number) - (minVal - (shortest[j] as number));
    // augment along the path
    let j = sink;
    for (;;) {
      const k = path[j] as number;
      row4col[j] = k;
      const previous = col4row[k] as number;
      col4row[k] = j;
      j = previous;
      if (k === curRow) break;
    }
  }
  return col4row;
};
