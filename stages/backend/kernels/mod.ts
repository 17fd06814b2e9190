/**
 * Our WASM kernels, registered over tfjs-wasm's missing or slow ones (BACKEND-NOTES.md). Each is
 * tested against the `cpu` backend (kernels_test.ts). Registration is idempotent.
 */
import { registerBatchMatMul } from "./batch_matmul.ts";
import { registerConv2D } from "./conv2d.ts";
import { registerConv2DBackpropFilter } from "./conv_backprop_filter.ts";
import { registerConv2DBackpropInput } from "./conv_backprop_input.ts";
import {
  registerDepthwiseConv2dNativeBackpropFilter,
  registerDepthwiseConv2dNativeBackpropInput,
} from "./depthwise_backprop.ts";
import { registerFusedMatMul } from "./fused_matmul.ts";
import { registerGather } from "./gather.ts";
import { registerIdentity } from "./identity.ts";
import { registerMaxPoolGrad } from "./max_pool_grad.ts";
import { registerResizeNearestNeighborGrad } from "./resize_nearest_grad.ts";
import { registerSum } from "./sum.ts";
import { registerTranspose } from "./transpose.ts";
import { registerUnsortedSegmentSum } from "./unsorted_segment_sum.ts";
import { registerWriteKernel } from "../write.ts";

let registered = false;

/** Registers every replacement kernel for the `wasm` backend (once). */
export const registerWasmKernels = (): void => {
  if (registered) return;
  registered = true;
  registerBatchMatMul();
  registerFusedMatMul(); // after BatchMatMul: it runs the product on BatchMatMul's fast path
  registerConv2D();
  registerConv2DBackpropFilter();
  registerConv2DBackpropInput();
  registerDepthwiseConv2dNativeBackpropFilter();
  registerDepthwiseConv2dNativeBackpropInput();
  registerGather();
  registerIdentity();
  registerMaxPoolGrad();
  registerResizeNearestNeighborGrad("wasm");
  registerSum();
  registerTranspose();
  registerUnsortedSegmentSum();
  registerWriteKernel();
};

/** Corrections to the `cpu` backend's kernels (registered whatever backend starts: tests compare against cpu). */
export const registerCpuKernels = (): void => registerResizeNearestNeighborGrad("cpu");
