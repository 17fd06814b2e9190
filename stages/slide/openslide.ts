/**
 * Whole-slide images through OpenSlide (libopenslide, C) over Deno FFI: Aperio SVS, Hamamatsu NDPI/VMS/VMU, MIRAX
 * MRXS, Leica SCN, Ventana BIF, Philips TIFF and tiled pyramidal ("generic") TIFF, read region by region.
 *
 * Why OpenSlide: it is the one reader that knows every vendor's layout, and it reads any region of any level without
 * decoding the rest. The library is optional: it is opened on first use, never at import, so `deno check` and every
 * other test run without it; `openSlideAvailable()` says whether it loads, or the one line to print
 * (`deno task setup` installs it; `IVAAN_OPENSLIDE=/path/to/libopenslide.so.0` picks another copy).
 *
 * Gotchas:
 * - OpenSlide's pixels are premultiplied ARGB, one native-endian uint32 each; `argbOverWhite` turns them into RGB on
 *   white, so that transparent pixels (outside the slide, missing tiles) read as glass, not black.
 * - Opening and reading run on a worker thread (nonblocking FFI): a large region does not stall the event loop.
 *   `close()` frees the handle once the reads in flight are done; reads after it throw.
 * - An OpenSlide error is sticky: after a read fails (a corrupt tile), every later read of that handle fails with the
 *   same message, as OpenSlide documents; open the file again to retry.
 * - OpenSlide 3.4.1 (Debian bookworm) reports no `openslide.mpp-x/y` for generic TIFF, only `tiff.XResolution`,
 *   `tiff.YResolution` and `tiff.ResolutionUnit`; `mpp` is then taken from those, when plausible (_resolution.ts).
 */
import { checkRegion, MAX_REGION_PIXELS } from "./_region.ts";
import { mppFromResolution } from "./_resolution.ts";
import { type ImageSource, ImageSourceError, type SlideLevel } from "./source.ts";

/** What to print when OpenSlide cannot be loaded. */
export const OPENSLIDE_MISSING =
  "OpenSlide is not installed: run `deno task setup` (or `apt-get install libopenslide0`)";

// OpenSlide 3.4 is libopenslide.so.0 (Debian 12's libopenslide0), 4.x libopenslide.so.1; Homebrew's is a dylib
const CANDIDATES = [
  "libopenslide.so.0",
  "libopenslide.so.1",
  "libopenslide.so",
  "libopenslide.1.dylib",
  "/opt/homebrew/lib/libopenslide.1.dylib",
  "/usr/local/lib/libopenslide.1.dylib",
];

// openslide.h (3.4.1; the same in 4.x). `openslide_t *` is an opaque pointer; `const char *` arguments are
// NUL-terminated buffers; `int64_t *` out-arguments are one-element BigInt64Arrays.
const SYMBOLS = {
  openslide_detect_vendor: { parameters: ["buffer"], result: "pointer", nonblocking: true },
  openslide_open: { parameters: ["buffer"], result: "pointer", nonblocking: true },
  openslide_close: { parameters: ["pointer"], result: "void" },
  openslide_get_error: { parameters: ["pointer"], result: "pointer" },
  openslide_get_level_count: { parameters: ["pointer"], result: "i32" },
  // osr, level, *w, *h
  openslide_get_level_dimensions: { parameters: ["pointer", "i32", "buffer", "buffer"], result: "void" },
  openslide_get_level_downsample: { parameters: ["pointer", "i32"], result: "f64" },
  // osr, dest (w·h uint32), x, y (level 0), level, w, h (at that level)
  openslide_read_region: {
    parameters: ["pointer", "buffer", "i64", "i64", "i32", "i64", "i64"],
    result: "void",
    nonblocking: true,
  },
  openslide_get_property_names: { parameters: ["pointer"], result: "pointer" },
  openslide_get_property_value: { parameters: ["pointer", "buffer"], result: "pointer" },
  openslide_get_associated_image_names: { parameters: ["pointer"], result: "pointer" },
  // osr, name, *w, *h
  openslide_get_associated_image_dimensions: { parameters: ["pointer", "buffer", "buffer", "buffer"], result: "void" },
  // osr, name, dest (w·h uint32)
  openslide_read_associated_image: { parameters: ["pointer", "buffer", "buffer"], result: "void", nonblocking: true },
} as const;

type OpenSlideLibrary = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const readEnv = (name: string): string | undefined => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the default candidates apply
  }
};

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

const loadLibrary = (): { readonly lib: OpenSlideLibrary } | { readonly missing: string } => {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return { missing: "OpenSlide needs the --allow-ffi permission (as deno.json's tasks declare)" };
  }
  const chosen = readEnv("IVAAN_OPENSLIDE");
  if (chosen !== undefined && chosen !== "") {
    try {
      return { lib: Deno.dlopen(chosen, SYMBOLS).symbols };
    } catch (e) {
      return { missing: `${OPENSLIDE_MISSING}; IVAAN_OPENSLIDE=${chosen} cannot be opened (${firstLine(e)})` };
    }
  }
  for (const name of CANDIDATES) {
    try {
      return { lib: Deno.dlopen(name, SYMBOLS).symbols };
    } catch {
      // the next name
    }
  }
  return { missing: OPENSLIDE_MISSING };
};

let loaded: ReturnType<typeof loadLibrary> | undefined;

/** `true` when OpenSlide loads (opening it once per process), else the reason, one line to print. */
export const openSlideAvailable = (): true | string => {
  loaded ??= loadLibrary();
  return "lib" in loaded ? true : loaded.missing;
};

const library = (file: string): OpenSlideLibrary => {
  loaded ??= loadLibrary();
  if ("missing" in loaded) throw new ImageSourceError({ file, reason: loaded.missing });
  return loaded.lib;
};

const cString = (s: string): Uint8Array => new TextEncoder().encode(s + "\0");

/** The strings of a NULL-terminated `const char * const *` (pointers are 8 bytes: Deno runs on 64-bit only). */
const cStrings = (array: Deno.PointerValue): string[] => {
  if (array === null) return [];
  const view = new Deno.UnsafePointerView(array), out: string[] = [];
  for (let p = view.getPointer(0), i = 1; p !== null; p = view.getPointer(8 * i++)) {
    out.push(Deno.UnsafePointerView.getCString(p));
  }
  return out;
};

/**
 * OpenSlide's pixels → RGB [n, 3] on white. Each uint32 is premultiplied ARGB in native byte order (cairo's ARGB32):
 * a channel c already holds colour·α, so un-premultiplying and compositing over white, colour·α + 255·(1 − α), is
 * c + 255 − a in one step, without the rounding of a division: opaque pixels (a = 255) keep c, transparent ones
 * (a = 0: outside the slide, missing tiles) become white.
 */
export const argbOverWhite = (argb: Uint32Array): Uint8Array => {
  const rgb = new Uint8Array(argb.length * 3);
  for (let i = 0, j = 0; i < argb.length; i++, j += 3) {
    const p = argb[i] ?? 0, white = 255 - (p >>> 24);
    rgb[j] = Math.min(255, ((p >>> 16) & 255) + white);
    rgb[j + 1] = Math.min(255, ((p >>> 8) & 255) + white);
    rgb[j + 2] = Math.min(255, (p & 255) + white);
  }
  return rgb;
};

/**
 * OpenSlide's name for the format of `path` ("aperio", "generic-tiff", …), or undefined when it reads none. Cheap: it
 * parses the header, not the pixels. Throws ImageSourceError when OpenSlide is not available.
 */
export const detectVendor = async (path: string): Promise<string | undefined> => {
  const name = cString(path);
  const vendor = await library(path).openslide_detect_vendor(name);
  return vendor === null ? undefined : Deno.UnsafePointerView.getCString(vendor);
};

const positive = (value: string | undefined): number | undefined => {
  const n = value === undefined || value.trim() === "" ? NaN : Number(value);
  return Number.isFinite(n) && n > 0 ? n : undefined;
};

/** mpp from OpenSlide's properties, else from the level-0 TIFF resolution tags (OpenSlide 3.4.1 on generic TIFF). */
const micronsPerPixel = (properties: Record<string, string>): { x: number; y: number } | undefined => {
  const x = positive(properties["openslide.mpp-x"]), y = positive(properties["openslide.mpp-y"]);
  if (x !== undefined && y !== undefined) return { x, y };
  const unit = properties["tiff.ResolutionUnit"] === "centimeter"
    ? "cm"
    : properties["tiff.ResolutionUnit"] === "inch"
    ? "inch"
    : undefined;
  if (unit === undefined) return undefined;
  const rx = positive(properties["tiff.XResolution"]), ry = positive(properties["tiff.YResolution"]);
  const tx = rx === undefined ? undefined : mppFromResolution(rx, unit);
  const ty = ry === undefined ? undefined : mppFromResolution(ry, unit);
  return tx !== undefined && ty !== undefined ? { x: tx, y: ty } : undefined;
};

/**
 * Opens a slide with OpenSlide. Rejects with ImageSourceError naming the file: when OpenSlide is not available, when
 * the file cannot be read, when OpenSlide recognises no format in it ("not a slide OpenSlide can read (vendor:
 * none)"), or with OpenSlide's own message when the format is recognised but broken.
 *
 * @example
 * ```ts ignore
 * const slide = await openSlide("case.svs");
 * const rgb = await slide.readRegion(20000, 15000, 0, 512, 512); // [512, 512, 3]
 * slide.close();
 * ```
 */
export const openSlide = async (path: string): Promise<ImageSource> => {
  const lib = library(path);
  const fail = (reason: string) => new ImageSourceError({ file: path, reason });
  await Deno.stat(path).catch((e) => Promise.reject(fail(`cannot read the file (${firstLine(e)})`)));
  const name = cString(path);
  const osr = await lib.openslide_open(name);
  if (osr === null) throw fail("not a slide OpenSlide can read (vendor: none)");
  const error = (): ImageSourceError | undefined => {
    const message = lib.openslide_get_error(osr);
    return message === null ? undefined : fail(Deno.UnsafePointerView.getCString(message));
  };
  const opening = error();
  if (opening !== undefined) {
    lib.openslide_close(osr);
    throw opening;
  }

  const levels: SlideLevel[] = [];
  const w = new BigInt64Array(1), h = new BigInt64Array(1);
  for (let level = 0; level < lib.openslide_get_level_count(osr); level++) {
    lib.openslide_get_level_dimensions(osr, level, w, h);
    levels.push({
      width: Number(w[0]),
      height: Number(h[0]),
      downsample: lib.openslide_get_level_downsample(osr, level),
    });
  }
  const properties: Record<string, string> = {};
  for (const key of cStrings(lib.openslide_get_property_names(osr))) {
    const value = lib.openslide_get_property_value(osr, cString(key));
    if (value !== null) properties[key] = Deno.UnsafePointerView.getCString(value);
  }
  const associated = cStrings(lib.openslide_get_associated_image_names(osr));
  const broken = error() ?? (levels.length === 0 ? fail("OpenSlide found no levels") : undefined);
  if (broken !== undefined) {
    lib.openslide_close(osr);
    throw broken;
  }

  // the handle is freed by close(), or after the last read in flight when close() came during it
  let closed = false, inFlight = 0;
  const use = async <T>(read: () => Promise<T>): Promise<T> => {
    if (closed) throw fail("the slide is closed (close() was called); open it again to read");
    inFlight++;
    try {
      return await read();
    } finally {
      if (--inFlight === 0 && closed) lib.openslide_close(osr);
    }
  };
  const mpp = micronsPerPixel(properties), objectivePower = positive(properties["openslide.objective-power"]);
  return {
    path,
    reader: `openslide:${properties["openslide.vendor"] ?? "unknown"}`,
    levels,
    ...(mpp === undefined ? {} : { mpp }),
    ...(objectivePower === undefined ? {} : { objectivePower }),
    properties,
    associated,
    readRegion: (x, y, level, width, height) =>
      use(async () => {
        checkRegion(path, levels, x, y, level, width, height);
        const argb = new Uint32Array(width * height); // [height, width]
        await lib.openslide_read_region(osr, argb, BigInt(x), BigInt(y), level, BigInt(width), BigInt(height));
        const failed = error();
        if (failed !== undefined) throw failed;
        return argbOverWhite(argb);
      }),
    readAssociated: (image) =>
      use(async () => {
        if (!associated.includes(image)) {
          const has = associated.length === 0 ? "none" : associated.join(", ");
          throw fail(`no associated image "${image}" (it has: ${has})`);
        }
        const key = cString(image);
        lib.openslide_get_associated_image_dimensions(osr, key, w, h);
        const width = Number(w[0]), height = Number(h[0]);
        if (width < 0 || height < 0) throw error() ?? fail(`cannot read the size of associated image "${image}"`);
        if (width * height > MAX_REGION_PIXELS) {
          throw fail(`associated image "${image}" is ${width} × ${height}, over the limit of 2^28 pixels`);
        }
        const argb = new Uint32Array(width * height); // [height, width]
        await lib.openslide_read_associated_image(osr, key, argb);
        const failed = error();
        if (failed !== undefined) throw failed;
        return { width, height, rgb: argbOverWhite(argb) };
      }),
    close: () => {
      if (closed) return;
      closed = true;
      if (inFlight === 0) lib.openslide_close(osr);
    },
  };
};
