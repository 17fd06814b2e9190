/**
 * Detections as QuPath-compatible GeoJSON, so predicted nuclei open in QuPath (File → Import objects
 * from file) with their class, colour and measurements, and a structural check of such files.
 *
 * The shape follows QuPath's own writer and reader (qupath/qupath, qupath-core/src/main/java/qupath/
 * lib/io/PathObjectTypeAdapters.java and GsonTools.java, v0.4+): a "FeatureCollection" of "Feature"s
 * with a UUID string `id` (read with `UUID.fromString`), a GeoJSON `geometry`, and `properties` holding
 * `objectType` ("detection" makes a PathDetectionObject; a missing type makes an annotation),
 * `classification: { name, color: [r, g, b] }`, `measurements` as a name → number object (an array of
 * {name, value} before v0.4) and `isLocked`. Coordinates are in full-resolution pixels with the origin
 * at the image's top-left corner (qupath-docs, advanced/exporting_annotations.rst) — the pixel-corner
 * convention of `contours.ts`.
 */
import { isSimpleRing, type Ring } from "./contours.ts";

/** One detected instance to export. */
export interface Detection {
  /** Instance id ≥ 0 (at most 12 decimal digits); becomes the feature's UUID. */
  readonly id: number;
  readonly className: string;
  /** RGB, integers 0–255. */
  readonly colour: readonly [number, number, number];
  /** Closed outer ring in pixel-corner coordinates (see `instanceContours`). */
  readonly ring: Ring;
  /** Name → value; non-finite values are dropped on export. */
  readonly measurements: Readonly<Record<string, number>>;
}

/** A GeoJSON position [x, y]. */
export type Position = [number, number];

/** One QuPath detection feature, as plain JSON data. */
export interface QuPathFeature {
  type: "Feature";
  id: string;
  geometry: { type: "Polygon"; coordinates: Position[][] };
  properties: {
    objectType: "detection";
    classification: { name: string; color: [number, number, number] };
    measurements: Record<string, number>;
    isLocked: boolean;
  };
}

/** A QuPath GeoJSON FeatureCollection. */
export interface QuPathFeatureCollection {
  type: "FeatureCollection";
  features: QuPathFeature[];
}

const maxId = 999_999_999_999;

/** A deterministic, UUID-shaped id: instance 123 → "00000000-0000-4000-8000-000000000123". */
export const detectionUuid = (id: number): string => {
  if (!(Number.isInteger(id) && id >= 0 && id <= maxId)) {
    throw new RangeError(`detectionUuid: id must be an integer in [0, ${maxId}], got ${id}`);
  }
  // version nibble 4 and variant 8 keep it a well-formed RFC 4122 string
  return `00000000-0000-4000-8000-${String(id).padStart(12, "0")}`;
};

// 2 decimals; `+ 0` turns −0 into 0 so the output survives a JSON round trip unchanged
const round2 = (v: number): number => Math.round(v * 100) / 100 + 0;

/**
 * One detection as a QuPath Polygon feature: coordinates rounded to 2 decimals (marching-squares
 * rings, multiples of 0.5, are unchanged), non-finite measurements dropped. `qupathGeoJson` is this
 * feature per detection; streaming writers (stages/slide/writers.ts) call it one detection at a time.
 */
export const qupathFeature = (d: Detection): QuPathFeature => ({
  type: "Feature",
  id: detectionUuid(d.id),
  geometry: { type: "Polygon", coordinates: [d.ring.map(([x, y]): Position => [round2(x), round2(y)])] },
  properties: {
    objectType: "detection",
    classification: { name: d.className, color: [d.colour[0], d.colour[1], d.colour[2]] },
    measurements: Object.fromEntries(
      Object.entries(d.measurements).filter(([, v]) => Number.isFinite(v)).map(([k, v]) => [k, v + 0]),
    ),
    isLocked: false,
  },
});

/**
 * A QuPath FeatureCollection with one Polygon detection per input (`qupathFeature`), in input order.
 * Run `geoJsonProblems` on the result before writing it when the inputs are not known to be valid.
 *
 * @example
 * ```ts
 * import { qupathGeoJson } from "./geojson.ts";
 * const fc = qupathGeoJson([{
 *   id: 1, className: "Neoplastic", colour: [255, 0, 0], measurements: { area: 0.5 },
 *   ring: [[1, 0.5], [0.5, 1], [0, 0.5], [0.5, 0], [1, 0.5]],
 * }]);
 * console.assert(fc.features[0]?.properties.objectType === "detection");
 * ```
 */
export const qupathGeoJson = (detections: ReadonlyArray<Detection>): QuPathFeatureCollection => ({
  type: "FeatureCollection",
  features: detections.map((d) => qupathFeature(d)),
});

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

const describe = (v: unknown): string => {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === "object" && v !== null) return "an object";
  return String(v);
};

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const isPosition = (v: unknown): v is Position =>
  Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number" && Number.isFinite(x));

const polygonProblems = (geometry: unknown, path: string): string[] => {
  if (geometry === undefined) return [`${path}: missing`];
  if (!isObject(geometry)) return [`${path}: expected an object, found ${describe(geometry)}`];
  const problems: string[] = [];
  if (geometry.type !== "Polygon") problems.push(`${path}.type: expected "Polygon", found ${describe(geometry.type)}`);
  const rings = geometry.coordinates;
  if (!Array.isArray(rings) || rings.length === 0) {
    return [...problems, `${path}.coordinates: expected an array of at least one ring, found ${describe(rings)}`];
  }
  for (const [k, ring] of (rings as unknown[]).entries()) {
    const at = `${path}.coordinates[${k}]`;
    if (!Array.isArray(ring)) {
      problems.push(`${at}: expected an array of positions, found ${describe(ring)}`);
      continue;
    }
    const bad = ring.flatMap((p: unknown, j) =>
      isPosition(p) ? [] : [`${at}[${j}]: expected [x, y] of finite numbers, found ${describe(p)}`]
    );
    if (bad.length > 0) {
      problems.push(...bad);
      continue;
    }
    const positions = ring as Position[];
    const [first, last] = [positions[0], positions[positions.length - 1]];
    if (positions.length < 4) problems.push(`${at}: ring has ${positions.length} positions, at least 4 needed`);
    if (first === undefined || last === undefined || first[0] !== last[0] || first[1] !== last[1]) {
      problems.push(`${at}: ring not closed`);
    } else if (k === 0 && positions.length >= 4 && !isSimpleRing(positions)) {
      problems.push(`${at}: exterior ring not simple (it crosses or touches itself, or repeats a point)`);
    }
  }
  return problems;
};

const propertiesProblems = (properties: unknown, path: string): string[] => {
  if (!isObject(properties)) return [`${path}: expected an object, found ${describe(properties)}`];
  const problems: string[] = [];
  const { objectType, classification, measurements, isLocked } = properties;
  if (objectType !== "detection") {
    problems.push(`${path}.objectType: expected "detection", found ${describe(objectType)}`);
  }
  if (!isObject(classification)) {
    problems.push(`${path}.classification: expected an object, found ${describe(classification)}`);
  } else {
    const { name, color } = classification;
    if (typeof name !== "string") {
      problems.push(`${path}.classification.name: expected a string, found ${describe(name)}`);
    }
    if (!Array.isArray(color) || color.length !== 3) {
      problems.push(`${path}.classification.color: expected [r, g, b], found ${describe(color)}`);
    } else {
      color.forEach((v: unknown, j) => {
        if (!(typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 255)) {
          problems.push(`${path}.classification.color[${j}]: expected an integer 0–255, found ${describe(v)}`);
        }
      });
    }
  }
  if (!isObject(measurements)) {
    problems.push(`${path}.measurements: expected an object of numbers, found ${describe(measurements)}`);
  } else {
    for (const [key, v] of Object.entries(measurements)) {
      if (!(typeof v === "number" && Number.isFinite(v))) {
        problems.push(`${path}.measurements[${JSON.stringify(key)}]: expected a finite number, found ${describe(v)}`);
      }
    }
  }
  if (isLocked !== undefined && typeof isLocked !== "boolean") {
    problems.push(`${path}.isLocked: expected a boolean, found ${describe(isLocked)}`);
  }
  return problems;
};

/**
 * Every structural problem of a QuPath detection FeatureCollection, each prefixed with its path
 * (`features[3].geometry.coordinates[0]: ring not closed`); an empty list means valid. Checks: the
 * collection's type and features array; each feature's type, optional UUID id (unique), Polygon
 * geometry with at least one ring of ≥ 4 finite [x, y] positions, closed, the exterior ring simple;
 * properties.objectType "detection", classification { name: string, color: 3 integers 0–255 },
 * measurements an object of finite numbers, isLocked (optional) a boolean. Simplicity is decided
 * exactly for coordinates that are multiples of 0.5 and to floating-point accuracy otherwise.
 */
export const geoJsonProblems = (value: unknown): string[] => {
  if (!isObject(value)) return [`(root): expected an object, found ${describe(value)}`];
  const problems: string[] = [];
  if (value.type !== "FeatureCollection") {
    problems.push(`type: expected "FeatureCollection", found ${describe(value.type)}`);
  }
  const features = value.features;
  if (!Array.isArray(features)) return [...problems, `features: expected an array, found ${describe(features)}`];
  const seen = new Map<string, number>(); // id → first feature index
  for (const [i, feature] of (features as unknown[]).entries()) {
    const path = `features[${i}]`;
    if (!isObject(feature)) {
      problems.push(`${path}: expected an object, found ${describe(feature)}`);
      continue;
    }
    if (feature.type !== "Feature") problems.push(`${path}.type: expected "Feature", found ${describe(feature.type)}`);
    const id = feature.id;
    if (id !== undefined) {
      if (typeof id !== "string" || !uuidPattern.test(id)) {
        problems.push(`${path}.id: expected a UUID string, found ${describe(id)}`);
      } else if (seen.has(id)) {
        problems.push(`${path}.id: duplicate of features[${seen.get(id)}].id`);
      } else seen.set(id, i);
    }
    problems.push(...polygonProblems(feature.geometry, `${path}.geometry`));
    problems.push(...propertiesProblems(feature.properties, `${path}.properties`));
  }
  return problems;
};
