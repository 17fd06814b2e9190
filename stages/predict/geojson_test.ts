import assert from "node:assert/strict";
import { instanceContours, ringArea } from "./contours.ts";
import {
  type Detection,
  detectionUuid,
  geoJsonProblems,
  type QuPathFeatureCollection,
  qupathGeoJson,
} from "./geojson.ts";

// A 12×16 map: a disc, a square on the top border, an L-shape in the bottom-right corner, one pixel.
const syntheticDetections = (): Detection[] => {
  const height = 12, width = 16, map = new Int32Array(height * width);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      if ((r + 0.5 - 6) ** 2 + (c + 0.5 - 5) ** 2 <= 9) map[r * width + c] = 1;
      if (r < 3 && c >= 10 && c < 13) map[r * width + c] = 2;
      if ((r >= 9 && c >= 13) || (r >= 6 && c === 15)) map[r * width + c] = 3;
    }
  }
  map[10 * width + 2] = 4;
  const classes = [["Neoplastic", [255, 0, 0]], ["Inflammatory", [0, 255, 0]]] as const;
  return [...instanceContours(map, height, width)].map(([id, ring]) => {
    const [className, colour] = classes[id % 2] ?? classes[0];
    return { id, className, colour, ring, measurements: { "Area px^2": ringArea(ring), "Score": 0.5 + id / 10 } };
  });
};

// A deep, mutable copy for breaking on purpose.
const copy = (fc: QuPathFeatureCollection): QuPathFeatureCollection => JSON.parse(JSON.stringify(fc));

Deno.test("GeoJSON of traced contours of a synthetic map has no problems and survives a JSON round trip", () => {
  const detections = syntheticDetections();
  assert.equal(detections.length, 4);
  const fc = qupathGeoJson(detections);
  assert.deepEqual(geoJsonProblems(fc), []);
  const parsed: unknown = JSON.parse(JSON.stringify(fc));
  assert.deepEqual(parsed, fc);
  assert.deepEqual(geoJsonProblems(parsed), []);
});

Deno.test("feature layout: UUID from the id, Polygon of the ring, detection class colour and measurements", () => {
  const fc = qupathGeoJson([{
    id: 123,
    className: "Epithelial",
    colour: [12, 34, 56],
    ring: [[1.234, 0.5], [0.5, 1.006], [-0.001, 0.5], [0.5, 0], [1.234, 0.5]],
    measurements: { area: 0.5, bad: NaN, worse: Infinity, zero: -0 },
  }]);
  assert.deepEqual(fc, {
    type: "FeatureCollection",
    features: [{
      type: "Feature",
      id: "00000000-0000-4000-8000-000000000123",
      geometry: { type: "Polygon", coordinates: [[[1.23, 0.5], [0.5, 1.01], [0, 0.5], [0.5, 0], [1.23, 0.5]]] },
      properties: {
        objectType: "detection",
        classification: { name: "Epithelial", color: [12, 34, 56] },
        measurements: { area: 0.5, zero: 0 },
        isLocked: false,
      },
    }],
  });
  assert.ok(Object.is(fc.features[0]?.geometry.coordinates[0]?.[2]?.[0], 0), "−0.001 rounds to +0, not −0");
});

Deno.test("detectionUuid is deterministic, UUID-shaped and rejects ids that do not fit", () => {
  assert.equal(detectionUuid(0), "00000000-0000-4000-8000-000000000000");
  assert.equal(detectionUuid(999_999_999_999), "00000000-0000-4000-8000-999999999999");
  assert.throws(() => detectionUuid(-1), RangeError);
  assert.throws(() => detectionUuid(1.5), RangeError);
  assert.throws(() => detectionUuid(1e12), RangeError);
});

Deno.test("each broken variant is reported with its path", () => {
  const fc = qupathGeoJson(syntheticDetections());
  const cases: Array<[string, (c: QuPathFeatureCollection) => void, string]> = [
    [
      "unclosed ring",
      (c) => c.features[1]?.geometry.coordinates[0]?.pop(),
      "features[1].geometry.coordinates[0]: ring not closed",
    ],
    [
      "self-intersecting ring",
      (c) => c.features[2] && (c.features[2].geometry.coordinates = [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]),
      "features[2].geometry.coordinates[0]: exterior ring not simple (it crosses or touches itself, or repeats a point)",
    ],
    [
      "wrong objectType",
      (c) => Reflect.set(c.features[0]?.properties ?? {}, "objectType", "annotation"),
      'features[0].properties.objectType: expected "detection", found "annotation"',
    ],
    [
      "colour 300",
      (c) => c.features[3] && (c.features[3].properties.classification.color = [300, 0, 0]),
      "features[3].properties.classification.color[0]: expected an integer 0–255, found 300",
    ],
    [
      "NaN measurement",
      (c) => c.features[0] && (c.features[0].properties.measurements["Score"] = NaN),
      'features[0].properties.measurements["Score"]: expected a finite number, found NaN',
    ],
    [
      "missing geometry",
      (c) => Reflect.deleteProperty(c.features[2] ?? {}, "geometry"),
      "features[2].geometry: missing",
    ],
    [
      "short ring",
      (c) => c.features[0] && (c.features[0].geometry.coordinates = [[[0, 0], [1, 0], [0, 0]]]),
      "features[0].geometry.coordinates[0]: ring has 3 positions, at least 4 needed",
    ],
    [
      "position with a string",
      (c) => Reflect.set(c.features[1]?.geometry.coordinates[0] ?? [], 2, [1, "2"]),
      "features[1].geometry.coordinates[0][2]: expected [x, y] of finite numbers, found an array of 2",
    ],
    [
      "duplicate id",
      (c) => c.features[3] && c.features[1] && (c.features[3].id = c.features[1].id),
      "features[3].id: duplicate of features[1].id",
    ],
    [
      "Point geometry",
      (c) => Reflect.set(c.features[1]?.geometry ?? {}, "type", "Point"),
      'features[1].geometry.type: expected "Polygon", found "Point"',
    ],
    [
      "missing class name",
      (c) => Reflect.deleteProperty(c.features[0]?.properties.classification ?? {}, "name"),
      "features[0].properties.classification.name: expected a string, found nothing",
    ],
    [
      "wrong collection type",
      (c) => Reflect.set(c, "type", "Feature"),
      'type: expected "FeatureCollection", found "Feature"',
    ],
  ];
  for (const [name, breakIt, expected] of cases) {
    const broken = copy(fc);
    breakIt(broken);
    assert.deepEqual(geoJsonProblems(broken), [expected], name);
  }
});

Deno.test("several problems are all listed; non-collections are rejected at the root", () => {
  const broken = copy(qupathGeoJson(syntheticDetections()));
  broken.features[0]?.geometry.coordinates[0]?.pop();
  Reflect.set(broken.features[2]?.properties ?? {}, "measurements", [1, 2]);
  assert.deepEqual(geoJsonProblems(broken), [
    "features[0].geometry.coordinates[0]: ring not closed",
    "features[2].properties.measurements: expected an object of numbers, found an array of 2",
  ]);
  assert.deepEqual(geoJsonProblems([]), ["(root): expected an object, found an array of 0"]);
  assert.deepEqual(geoJsonProblems({ type: "FeatureCollection" }), ["features: expected an array, found nothing"]);
  assert.deepEqual(geoJsonProblems({ type: "FeatureCollection", features: [] }), []);
});
