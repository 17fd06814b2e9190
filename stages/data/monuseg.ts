/**
 * MoNuSeg (`monuseg:DIR`): `NAME.tif` images (read with sharp) with Aperio ImageScope `NAME.xml`
 * annotations — one `<Region>` per nucleus with float `<Vertex X= Y=>` in pixel coordinates
 * (origin top-left). Each region is filled with the pixel-centre rule (polygon.ts), clipped to the
 * image; later regions overwrite earlier ones. MoNuSeg has no classes: every nucleus is "nucleus".
 * A region needs at least 3 vertices, each with numeric X and Y (a blank value is as missing as an absent one).
 * Images and annotations may sit together or in `Tissue Images/` and `Annotations/` folders.
 */
import { XMLParser } from "fast-xml-parser";
import { fillPolygon } from "./polygon.ts";
import { readRgb } from "./image.ts";
import { type Dataset, DatasetError, relabelContiguous, type Sample } from "./sample.ts";

/** The regions of an ImageScope XML as vertex lists. */
export const parseImageScopeXml = (text: string, file: string): Array<{ xs: Float64Array; ys: Float64Array }> => {
  let doc: unknown;
  try {
    doc = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: "",
      isArray: (name) => ["Annotation", "Region", "Vertex"].includes(name),
    })
      .parse(text, true);
  } catch (e) {
    throw new DatasetError({ file, reason: `not valid XML (${e instanceof Error ? e.message.split("\n")[0] : e})` });
  }
  type Vertex = { X?: string; Y?: string };
  type Region = { Vertices?: { Vertex?: Vertex[] } };
  const annotations =
    ((doc as { Annotations?: { Annotation?: Array<{ Regions?: { Region?: Region[] } }> } }).Annotations?.Annotation) ??
      [];
  const regions = annotations.flatMap((a) => a.Regions?.Region ?? []);
  if (regions.length === 0) {
    throw new DatasetError({
      file,
      reason: "no <Region> elements: expected one region per nucleus (Aperio ImageScope XML)",
    });
  }
  // Number("") and Number("  ") are 0: a blank coordinate is as missing as an absent one
  const coordinate = (text: string | undefined) => (text === undefined || text.trim() === "" ? NaN : Number(text));
  return regions.map((region, k) => {
    const vertices = region.Vertices?.Vertex ?? [];
    if (vertices.length < 3) {
      throw new DatasetError({
        file,
        reason: `region ${k + 1} has ${vertices.length} <Vertex> elements; expected a polygon of at least 3`,
      });
    }
    const xs = new Float64Array(vertices.length), ys = new Float64Array(vertices.length);
    vertices.forEach((v, i) => {
      const x = coordinate(v.X), y = coordinate(v.Y);
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        throw new DatasetError({
          file,
          reason: `region ${k + 1}, vertex ${i + 1}: expected numeric X and Y, found X=${JSON.stringify(v.X)} Y=${
            JSON.stringify(v.Y)
          }`,
        });
      }
      [xs[i], ys[i]] = [x, y];
    });
    return { xs, ys };
  });
};

/** The instance map of polygons on an H×W image (later polygons overwrite), relabelled 1..n. */
export const rasterizeRegions = (
  regions: ReadonlyArray<{ xs: Float64Array; ys: Float64Array }>,
  height: number,
  width: number,
): Int32Array => {
  const map = new Int32Array(height * width);
  regions.forEach((r, k) => fillPolygon(r.xs, r.ys, height, width, (i) => (map[i] = k + 1)));
  return relabelContiguous(map).instances;
};

const IMAGE = /\.(tif|tiff|png)$/i;

/** Opens MoNuSeg at DIR; samples are sorted by name. */
export const openMonuseg = async (dir: string): Promise<Dataset> => {
  const candidates = [dir, `${dir}/Tissue Images`, `${dir}/Annotations`];
  const files = new Map<string, string>();
  for (const d of candidates) {
    try {
      for await (const e of Deno.readDir(d)) if (e.isFile) files.set(e.name, `${d}/${e.name}`);
    } catch (e) {
      if (d === dir) {
        throw new DatasetError({ file: dir, reason: `cannot list (${e instanceof Error ? e.message : e})` });
      }
    }
  }
  const images = [...files.keys()].filter((n) => IMAGE.test(n)).sort();
  if (images.length === 0) {
    throw new DatasetError({ file: dir, reason: "no .tif images found (expected NAME.tif with NAME.xml)" });
  }
  const missing = images.filter((n) => !files.has(n.replace(IMAGE, ".xml")));
  if (missing.length > 0) {
    throw new DatasetError({
      file: files.get(missing[0] as string) as string,
      reason: `no annotation ${(missing[0] as string).replace(IMAGE, ".xml")} beside it`,
    });
  }
  return {
    kind: "monuseg",
    classes: ["nucleus"],
    size: images.length,
    sample: async (i): Promise<Sample> => {
      const name = images[i];
      if (name === undefined) throw new RangeError(`monuseg: sample ${i} outside [0, ${images.length})`);
      const imagePath = files.get(name) as string, xmlPath = files.get(name.replace(IMAGE, ".xml")) as string;
      const { height, width, rgb } = await readRgb(imagePath);
      const regions = parseImageScopeXml(await Deno.readTextFile(xmlPath), xmlPath);
      const instances = rasterizeRegions(regions, height, width);
      let n = 0;
      for (const v of instances) if (v > n) n = v;
      const classOf = new Int32Array(n + 1).fill(0);
      classOf[0] = -1;
      return {
        id: name.replace(IMAGE, ""),
        organ: "",
        height,
        width,
        image: rgb,
        instances,
        classOf,
      };
    },
    close: () => {},
  };
};
