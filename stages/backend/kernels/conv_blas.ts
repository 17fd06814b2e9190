/**
 * Stride-1 convolutions as sums of shifted matrix products on the native BLAS ("shifted GEMM").
 *
 * Pad the input once to P [B, Hp + 1, Wp, Ci] (Hp = OH + KH − 1, Wp = OW + KW − 1; the extra zero
 * row absorbs the overrun below). For a kernel offset (kh, kw), the pixels P[b, oy + kh, ox + kw]
 * for oy < OH and ox < Wp are ONE contiguous slice of P read as a matrix [OH·Wp, Ci] — its last
 * KW − 1 columns wrap into the next row, so each product is computed on a "wide" output of width Wp
 * whose extra columns are dropped (forward) or multiplied by zero (filter gradient). No im2col
 * buffer: each image costs KH·KW sgemm calls with K = Ci (forward) or K = OH·Wp (filter gradient).
 *
 * Strided convolutions (the stem's stride-2 layers, the 16×16 patch embedding) have no such
 * contiguous slices; they gather the patches once (im2col, [B·OH·OW, KH·KW·Ci]) and run one
 * product: forward patches · W, filter gradient patchesᵀ · dy.
 */
import type { Blas } from "./blas.ts";

export interface Conv2DGeometry {
  readonly batch: number;
  readonly inHeight: number;
  readonly inWidth: number;
  readonly inChannels: number;
  readonly outHeight: number;
  readonly outWidth: number;
  readonly outChannels: number;
  readonly filterHeight: number;
  readonly filterWidth: number;
  /** zeros added above / left of the input */
  readonly top: number;
  readonly left: number;
  /** strides (1 when absent); only the im2col functions take strides other than 1 */
  readonly strideHeight?: number;
  readonly strideWidth?: number;
}

/** The largest patch matrix (floats) im2col builds: 256 MB; a larger conv keeps the original kernel. */
const MAX_PATCH_FLOATS = 1 << 26;

/** The number of floats of `g`'s patch matrix. */
const patchFloats = (g: Conv2DGeometry): number =>
  g.batch * g.outHeight * g.outWidth * g.filterHeight * g.filterWidth * g.inChannels;

/**
 * Every tap of the patch matrix [B·OH·OW, KH·KW·Ci] that falls inside the input [B, H, W, Ci]:
 * `visit(patch, pixel)` with the offsets of its Ci values in the patch matrix and in the input.
 */
const eachPatchTap = (g: Conv2DGeometry, visit: (patch: number, pixel: number) => void): void => {
  const { inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = g;
  const sh = g.strideHeight ?? 1, sw = g.strideWidth ?? 1, k = kh * kw * ci;
  for (let b = 0; b < g.batch; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const row = ((b * oh + oy) * ow + ox) * k;
        for (let i = 0; i < kh; i++) {
          const iy = oy * sh + i - g.top;
          if (iy < 0 || iy >= h) continue;
          for (let j = 0; j < kw; j++) {
            const ix = ox * sw + j - g.left;
            if (ix >= 0 && ix < w) visit(row + (i * kw + j) * ci, ((b * h + iy) * w + ix) * ci);
          }
        }
      }
    }
  }
};

/** x [B, H, W, Ci] → patches [B·OH·OW, KH·KW·Ci], zero where a tap falls outside the input. */
const im2col = (x: Float32Array, g: Conv2DGeometry): Float32Array => {
  const ci = g.inChannels, out = new Float32Array(patchFloats(g));
  eachPatchTap(g, (patch, pixel) => {
    for (let c = 0; c < ci; c++) out[patch + c] = x[pixel + c] as number;
  });
  return out;
};

/** out [B, OH, OW, Co] = conv(x, filter [KH, KW, Ci, Co]) at any stride (dilation 1), via im2col. */
export const conv2dIm2col = (blas: Blas, x: Float32Array, filter: Float32Array, g: Conv2DGeometry): Float32Array => {
  const rows = g.batch * g.outHeight * g.outWidth, k = g.filterHeight * g.filterWidth * g.inChannels;
  const out = new Float32Array(rows * g.outChannels);
  blas.sgemm(false, false, rows, g.outChannels, k, im2col(x, g), filter, out);
  return out;
};

/** dW [KH, KW, Ci, Co] of a conv at any stride (dilation 1), from x and dy [B, OH, OW, Co], via im2col. */
export const conv2dFilterGradIm2col = (
  blas: Blas,
  x: Float32Array,
  dy: Float32Array,
  g: Conv2DGeometry,
): Float32Array => {
  const rows = g.batch * g.outHeight * g.outWidth, k = g.filterHeight * g.filterWidth * g.inChannels;
  const dw = new Float32Array(k * g.outChannels);
  blas.sgemm(true, false, k, g.outChannels, rows, im2col(x, g), dy, dw);
  return dw;
};

/** x [B, H, W, Ci] → P [B, Hp + 1, Wp, Ci], zero-padded; rows of x that fall outside are dropped. */
const padded = (x: Float32Array, g: Conv2DGeometry): { p: Float32Array; hp: number; wp: number } => {
  const hp = g.outHeight + g.filterHeight - 1, wp = g.outWidth + g.filterWidth - 1, c = g.inChannels;
  const p = new Float32Array(g.batch * (hp + 1) * wp * c);
  const x0 = Math.max(0, -g.left), x1 = Math.min(g.inWidth, wp - g.left);
  for (let b = 0; b < g.batch; b++) {
    for (let y = 0; y < g.inHeight; y++) {
      const py = y + g.top;
      if (py < 0 || py >= hp || x1 <= x0) continue;
      const src = ((b * g.inHeight + y) * g.inWidth) * c;
      const dst = ((b * (hp + 1) + py) * wp + g.left) * c;
      p.set(x.subarray(src + x0 * c, src + x1 * c), dst + x0 * c);
    }
  }
  return { p, hp, wp };
};

/** out [B, OH, OW, Co] = conv(x [B, H, W, Ci], filter [KH, KW, Ci, Co]) at stride 1, dilation 1. */
export const conv2dStride1 = (blas: Blas, x: Float32Array, filter: Float32Array, g: Conv2DGeometry): Float32Array => {
  const { p, hp, wp } = padded(x, g);
  const ci = g.inChannels, co = g.outChannels, rows = g.outHeight * wp;
  const wide = new Float32Array(g.batch * rows * co); // [B, OH, Wp, Co]
  for (let b = 0; b < g.batch; b++) {
    const image = b * (hp + 1) * wp * ci;
    const c = wide.subarray(b * rows * co, (b + 1) * rows * co);
    for (let kh = 0; kh < g.filterHeight; kh++) {
      for (let kw = 0; kw < g.filterWidth; kw++) {
        const start = image + (kh * wp + kw) * ci;
        const f = (kh * g.filterWidth + kw) * ci * co;
        blas.sgemm(
          false,
          false,
          rows,
          co,
          ci,
          p.subarray(start, start + rows * ci),
          filter.subarray(f, f + ci * co),
          c,
          true,
        );
      }
    }
  }
  const out = new Float32Array(g.batch * g.outHeight * g.outWidth * co);
  for (let r = 0; r < g.batch * g.outHeight; r++) {
    out.set(wide.subarray(r * wp * co, (r * wp + g.outWidth) * co), r * g.outWidth * co);
  }
  return out;
};

/** dW [KH, KW, Ci, Co] of a stride-1 conv, from x [B, H, W, Ci] and dy [B, OH, OW, Co]. */
export const conv2dFilterGradStride1 = (
  blas: Blas,
  x: Float32Array,
  dy: Float32Array,
  g: Conv2DGeometry,
): Float32Array => {
  const { p, hp, wp } = padded(x, g);
  const ci = g.inChannels, co = g.outChannels, rows = g.outHeight * wp;
  const dyWide = new Float32Array(g.batch * rows * co); // [B, OH, Wp, Co], zero past OW
  for (let r = 0; r < g.batch * g.outHeight; r++) {
    dyWide.set(dy.subarray(r * g.outWidth * co, (r + 1) * g.outWidth * co), r * wp * co);
  }
  const dw = new Float32Array(g.filterHeight * g.filterWidth * ci * co);
  for (let kh = 0; kh < g.filterHeight; kh++) {
    for (let kw = 0; kw < g.filterWidth; kw++) {
      const f = (kh * g.filterWidth + kw) * ci * co;
      const c = dw.subarray(f, f + ci * co);
      for (let b = 0; b < g.batch; b++) {
        const start = b * (hp + 1) * wp * ci + (kh * wp + kw) * ci;
        blas.sgemm(
          true,
          false,
          ci,
          co,
          rows,
          p.subarray(start, start + rows * ci),
          dyWide.subarray(b * rows * co, (b + 1) * rows * co),
          c,
          true,
        );
      }
    }
  }
  return dw;
};

/**
 * dx [B, H, W, Ci] of a conv at any stride (dilation 1), from dy [B, OH, OW, Co] and the filter
 * [KH, KW, Ci, Co]: the patch gradients dy · Wᵀ ([B·OH·OW, KH·KW·Ci], one product) added back to
 * the pixels they were gathered from (col2im). Unlike spreading dy with zeros for a stride-1
 * convolution, no product is spent on the zeros.
 */
export const conv2dInputGradIm2col = (
  blas: Blas,
  dy: Float32Array,
  filter: Float32Array,
  g: Conv2DGeometry,
): Float32Array => {
  const ci = g.inChannels, k = g.filterHeight * g.filterWidth * ci, rows = g.batch * g.outHeight * g.outWidth;
  const cols = new Float32Array(rows * k);
  blas.sgemm(false, true, rows, k, g.outChannels, dy, filter, cols);
  const dx = new Float32Array(g.batch * g.inHeight * g.inWidth * ci);
  eachPatchTap(g, (patch, pixel) => {
    for (let c = 0; c < ci; c++) dx[pixel + c] = (dx[pixel + c] as number) + (cols[patch + c] as number);
  });
  return dx;
};

const isStride1 = (g: Conv2DGeometry): boolean => (g.strideHeight ?? 1) === 1 && (g.strideWidth ?? 1) === 1;

/** Whether `g` is a 1×1, stride-1, unpadded conv: a plain product of [B·H·W, Ci] pixels with [Ci, Co]. */
export const isPointwise = (g: Conv2DGeometry): boolean =>
  g.filterHeight === 1 && g.filterWidth === 1 && isStride1(g) &&
  g.top === 0 && g.left === 0 && g.outHeight === g.inHeight && g.outWidth === g.inWidth;

/** Whether the shifted-product functions take `g`: stride 1 and at most 49 kernel taps. */
export const isShifted = (g: Conv2DGeometry): boolean => isStride1(g) && g.filterHeight * g.filterWidth <= 49;

/** Whether the im2col functions take `g`: a stride above 1 and a patch matrix of at most 256 MB. */
export const isIm2col = (g: Conv2DGeometry): boolean => !isStride1(g) && patchFloats(g) <= MAX_PATCH_FLOATS;
