/**
 * One optimisation step of the baseline: forward, Mask2Former loss with deep supervision, gradients,
 * global-norm clipping, AdamW (Adam + decoupled weight decay, Loshchilov & Hutter 2019).
 * Every tensor of the step is released before it returns (tested: the tensor count stays flat).
 */
import * as tf from "@tensorflow/tfjs";
import { prefetch } from "../backend/tf.ts";
import type { Sample } from "../data/sample.ts";
import { CENTER_STRIDE, centerFocalLoss, centerTargets } from "./centers.ts";
import { parameterList } from "./layers.ts";
import { lossFromPlan, type LossOptions, type LossPlan, planLoss } from "./losses.ts";
import type { InstanceTargets } from "./matcher.ts";
import {
  applyModel,
  applyModelAsync,
  centerStrideOf,
  type ModelConfig,
  type ModelInputs,
  type ModelParams,
  outputTensors,
} from "./model.ts";
import { presenceOf } from "./fusion.ts";
import { denseLoss, denseTargets, typeLoss, typeTargets } from "./dense.ts";
import { embed } from "./alignment.ts";
import {
  type AttributeBatch,
  matchedQueries,
  organPrompts,
  type OrganText,
  promptEmbeddings,
  textFeatures,
  visionLanguageLoss,
} from "./vision_language.ts";

export interface TrainOptions {
  readonly learningRate: number;
  readonly weightDecay: number;
  /** clip the global gradient norm to this value (0 = off) */
  readonly clipNorm: number;
  readonly loss: Partial<LossOptions>;
  /** weight of the centre heat-map focal loss (models with centre queries) */
  readonly weightCenter: number;
  /** weight of the dense auxiliary losses (models with `dense`): BCE + dice + distance MSE */
  readonly weightDense?: number;
  /** the dataset's class names: the class prompts of the vision–language configs */
  readonly classNames?: ReadonlyArray<string>;
  /** each fitted attribute's candidate prompts (`a {word} nucleus`, scale order), for L_attr */
  readonly attributePrompts?: ReadonlyArray<ReadonlyArray<string>>;
}

export const defaultTrainOptions: TrainOptions = {
  learningRate: 1e-4,
  weightDecay: 0.05,
  clipNorm: 1,
  loss: {},
  weightCenter: 1,
};

/** A batch: images [B, H, W, 3] in 0–255, per image instance classes and masks [N, H, W], centre targets. */
export interface Batch {
  readonly images: tf.Tensor4D;
  readonly targets: ReadonlyArray<InstanceTargets>;
  readonly centers: tf.Tensor3D; // [B, H/c, W/c] CenterNet heat map of the kept instances (c: the centre stride)
  /** per image, the attribute labels of its targets (L_attr) */
  readonly attributes?: AttributeBatch;
  /** per image, its organ ("" unknown): L_fix's organ prompts */
  readonly organs?: ReadonlyArray<string>;
  /** dense supervision's targets [B, H/s, W/s, 3] (foreground, horizontal, vertical) */
  readonly dense?: tf.Tensor4D;
  /** the type map's targets [B, H/s, W/s, C+1] (each cell's fraction of background and of each class) */
  readonly types?: tf.Tensor4D;
}

/** Which dense targets a batch carries besides the masks: at what strides, and the type map's class count. */
export interface BatchTargets {
  /** dense supervision's targets at this stride (absent: none) */
  readonly denseStride?: number;
  /** the centre heat map's stride (default 4) */
  readonly centerStride?: number;
  /** the type map's targets for this many classes, at `denseStride` (absent: none) */
  readonly typeClasses?: number;
}

/** Per sample, instance id → `[A]` attribute scale indices; and each attribute's candidate count. */
export interface SampleAttributes {
  readonly labels: ReadonlyArray<ReadonlyMap<number, Int32Array>>;
  readonly candidates: ReadonlyArray<number>;
}

/**
 * Builds a batch from samples of one size (class −1 nuclei are left out of the targets), with the dense targets
 * `wanted` names (`BatchTargets`).
 */
export const batchOf = (
  samples: ReadonlyArray<Sample>,
  attributes?: SampleAttributes,
  wanted: BatchTargets = {},
): Batch => {
  const { denseStride, centerStride = CENTER_STRIDE, typeClasses } = wanted;
  if (typeClasses !== undefined && denseStride === undefined) {
    throw new RangeError("batchOf: the type map's targets need a dense stride");
  }
  const [h, w] = [samples[0]?.height ?? 0, samples[0]?.width ?? 0];
  const pixels = new Float32Array(samples.length * h * w * 3);
  samples.forEach((s, i) => pixels.set(s.image, i * h * w * 3));
  const [ch, cw] = [Math.ceil(h / centerStride), Math.ceil(w / centerStride)];
  const centers = new Float32Array(samples.length * ch * cw);
  const A = attributes?.candidates.length ?? 0;
  const attributeLabels: Int32Array[] = [];
  const [dh, dw] = denseStride === undefined ? [0, 0] : [Math.floor(h / denseStride), Math.floor(w / denseStride)];
  const dense = new Float32Array(samples.length * dh * dw * 3);
  const k = typeClasses === undefined ? 0 : typeClasses + 1;
  const types = new Float32Array(samples.length * dh * dw * k);
  const targets = samples.map((s, i) => {
    const ids = Array.from({ length: s.classOf.length - 1 }, (_, k) => k + 1).filter((id) =>
      (s.classOf[id] as number) >= 0
    );
    if (attributes !== undefined) {
      const labels = new Int32Array(ids.length * A).fill(-1); // [N · A]
      ids.forEach((id, k) => {
        const known = attributes.labels[i]?.get(id);
        if (known !== undefined) labels.set(known, k * A);
      });
      attributeLabels.push(labels);
    }
    const masks = new Float32Array(ids.length * h * w);
    const slot = new Int32Array(s.classOf.length).fill(-1);
    ids.forEach((id, k) => (slot[id] = k));
    const kept = new Int32Array(h * w);
    for (let p = 0; p < h * w; p++) {
      const k = slot[s.instances[p] as number] as number;
      if (k >= 0) [masks[k * h * w + p], kept[p]] = [1, k + 1];
    }
    centers.set(centerTargets(kept, h, w, centerStride), i * ch * cw);
    const classes = Int32Array.from(ids, (id) => s.classOf[id] as number);
    if (denseStride !== undefined) dense.set(denseTargets(kept, h, w, denseStride), i * dh * dw * 3);
    if (typeClasses !== undefined && denseStride !== undefined) {
      types.set(typeTargets(kept, classes, h, w, denseStride, typeClasses), i * dh * dw * k);
    }
    return {
      classes,
      masks: tf.tensor3d(masks, [ids.length, h, w]),
    };
  });
  return {
    images: tf.tensor4d(pixels, [samples.length, h, w, 3]),
    targets,
    centers: tf.tensor3d(centers, [samples.length, ch, cw]),
    ...(attributes === undefined ? {} : { attributes: { labels: attributeLabels, candidates: attributes.candidates } }),
    organs: samples.map((s) => s.organ),
    ...(denseStride === undefined ? {} : { dense: tf.tensor4d(dense, [samples.length, dh, dw, 3]) }),
    ...(typeClasses === undefined ? {} : { types: tf.tensor4d(types, [samples.length, dh, dw, k]) }),
  };
};

/**
 * The batch `config` trains on for `classes` classes: dense targets at its mask stride when it has dense supervision
 * (and the type map's with `denseTypes`), centres at its stride.
 */
export const modelBatch = (
  config: ModelConfig,
  classes: number,
  samples: ReadonlyArray<Sample>,
  attributes?: SampleAttributes,
): Batch =>
  batchOf(samples, attributes, {
    ...(config.dense === true ? { denseStride: config.maskStride } : {}),
    centerStride: centerStrideOf(config),
    ...(config.denseTypes === true ? { typeClasses: classes } : {}),
  });

export const disposeBatch = (b: Batch): void =>
  tf.dispose([
    b.images,
    b.centers,
    ...b.targets.map((t) => t.masks),
    ...(b.dense === undefined ? [] : [b.dense]),
    ...(b.types === undefined ? [] : [b.types]),
  ]);

/**
 * The loss parts of a step (plain numbers; `center` is 0 for models with learned queries, `fix`
 * and `cent` are 0 without the vision–language parts).
 */
export interface StepLosses {
  readonly total: number;
  readonly class: number;
  readonly mask: number;
  readonly dice: number;
  readonly center: number;
  readonly fix: number;
  readonly attr: number;
  readonly cent: number;
  /** feature fusion's presence head: binary cross-entropy against the truth's classes */
  readonly presence: number;
  /** dense supervision: foreground BCE + dice and the distance maps' MSE (0 without `dense`) */
  readonly dense: number;
  readonly gradNorm: number;
}

/** One AdamW step; returns the loss parts (plain numbers). Reads values synchronously (see `trainStepAsync`). */
export const trainStep = (
  params: ModelParams,
  config: ModelConfig,
  classes: number,
  optimizer: tf.Optimizer,
  batch: Batch,
  options: TrainOptions,
): StepLosses => {
  const variables = trainableVariables(params);
  let parts = {
    total: 0,
    class: 0,
    mask: 0,
    dice: 0,
    center: 0,
    fix: 0,
    attr: 0,
    cent: 0,
    presence: 0,
    dense: 0,
    gradNorm: 0,
  };
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const present = truthPresence(config, batch, classes);
      const loss = stepLoss(params, config, classes, batch, options, present === undefined ? {} : { present });
      parts = { ...parts, ...mapParts(loss.parts, (t) => t.dataSync()[0] as number) };
      return loss.total;
    }, variables);
    parts.total = value.dataSync()[0] as number;
    const norm = Math.sqrt(squaredNorm(grads).dataSync()[0] as number);
    parts.gradNorm = norm;
    update(
      variables,
      optimizer,
      options,
      grads,
      options.clipNorm > 0 && norm > options.clipNorm ? options.clipNorm / norm : 1,
    );
  });
  return parts;
};

/**
 * `trainStep` for backends that cannot read values synchronously (webgpu under Deno), correct on
 * any: a first run without gradients takes every value-dependent decision (centre peaks, the loss
 * plan: matching and sampled points) from values read asynchronously; the differentiated run
 * replays those decisions, so it reads nothing; the loss parts are read after the update. The
 * forward runs twice, the price of a step without synchronous reads.
 */
export const trainStepAsync = async (
  params: ModelParams,
  config: ModelConfig,
  classes: number,
  optimizer: tf.Optimizer,
  batch: Batch,
  options: TrainOptions,
): Promise<StepLosses> => {
  const variables = trainableVariables(params);
  const present = truthPresence(config, batch, classes);
  // the targets' values are read on the host by the plan and the losses: cached before any upload
  await prefetch(batch.targets.map((t) => t.masks));
  const first = await applyModelAsync(params, config, classes, batch.images, present === undefined ? {} : { present });
  let plan: LossPlan;
  try {
    await prefetch(first.predictions.flatMap((p) => [p.logits, p.masks]));
    plan = planLoss(first.predictions, batch.targets, options.loss);
  } finally {
    tf.dispose(outputTensors(first));
  }
  const inputs = { ...first.decided, ...(present === undefined ? {} : { present }) };
  let kept: Record<keyof LossParts, tf.Scalar> | undefined;
  const [total, norm] = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const loss = stepLoss(params, config, classes, batch, options, inputs, plan);
      kept = mapParts(loss.parts, (t) => tf.keep(t)); // read after the step
      return loss.total;
    }, variables);
    const norm = tf.sqrt(squaredNorm(grads)) as tf.Scalar;
    // min(1, clip / norm) on the device: no read before the update
    const scale = options.clipNorm > 0 ? tf.div(options.clipNorm, tf.maximum(norm, options.clipNorm)) : 1;
    update(variables, optimizer, options, grads, scale as number | tf.Scalar);
    return [value, norm];
  });
  const scalars = kept === undefined ? [] : Object.values(kept);
  try {
    const [values, normValue] = await Promise.all([prefetch([total, ...scalars]), norm.data()]);
    const read = (i: number) => values[i]?.[0] as number;
    const names = Object.keys(kept ?? {}) as Array<keyof LossParts>;
    return {
      ...Object.fromEntries(names.map((name, i) => [name, read(i + 1)])) as Record<keyof LossParts, number>,
      total: read(0),
      gradNorm: normValue[0] as number,
    };
  } finally {
    tf.dispose([total, norm, ...scalars]);
  }
};

/** The loss parts besides the total. */
type LossParts = Omit<StepLosses, "total" | "gradNorm">;

const mapParts = <A, B>(parts: Record<keyof LossParts, A>, f: (a: A) => B): Record<keyof LossParts, B> =>
  Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, f(v as A)])) as Record<keyof LossParts, B>;

// a frozen text encoder's features are a non-trainable variable: saved, never updated
const trainableVariables = (params: ModelParams): tf.Variable[] =>
  parameterList(params).filter((t): t is tf.Variable => t instanceof tf.Variable && t.trainable);

/** The truth's classes per image: feature fusion reads them, its presence head learns them. */
const truthPresence = (config: ModelConfig, batch: Batch, classes: number): Float32Array | undefined =>
  config.vl?.fusion === undefined ? undefined : presenceOf(batch.targets.map((t) => t.classes), classes);

/** The step's loss: total and parts (scalars), with the loss plan made here unless `plan` is given. */
const stepLoss = (
  params: ModelParams,
  config: ModelConfig,
  classes: number,
  batch: Batch,
  options: TrainOptions,
  inputs: ModelInputs,
  plan?: LossPlan,
): { total: tf.Scalar; parts: Record<keyof LossParts, tf.Scalar> } => {
  const output = applyModel(params, config, classes, batch.images, inputs);
  const decisions = plan ?? planLoss(output.predictions, batch.targets, options.loss);
  const loss = lossFromPlan(output.predictions, batch.targets, decisions, options.loss);
  const center = output.centers === undefined ? tf.scalar(0) : centerFocalLoss(output.centers, batch.centers);
  const vl = visionLanguage(params, config, options, batch, output, decisions.layers.at(-1) ?? [], inputs.present);
  const dense = tf.add(denseTotal(output.dense, batch.dense), typeTotal(output.types, batch.types)) as tf.Scalar;
  return {
    total: tf.addN([
      loss.total,
      tf.mul(center, options.weightCenter),
      vl.total,
      tf.mul(dense, options.weightDense ?? 1),
    ]) as tf.Scalar,
    parts: { ...loss.parts, center, fix: vl.fix, attr: vl.attr, presence: vl.presence, cent: vl.cent, dense },
  };
};

/** The dense losses' sum (HoVer-Net's weights: 1 each, MSGE 2), 0 without dense supervision. */
const denseTotal = (predicted: tf.Tensor4D | undefined, targets: tf.Tensor4D | undefined): tf.Scalar => {
  if (predicted === undefined) return tf.scalar(0);
  if (targets === undefined) throw new RangeError("trainStep: a model with dense supervision needs its targets");
  if (predicted.shape.some((n, i) => n !== targets.shape[i])) {
    throw new RangeError(`trainStep: dense maps ${predicted.shape} against targets ${targets.shape}`);
  }
  const { bce, dice, distance, gradient } = denseLoss(predicted, targets);
  return tf.addN([bce, dice, distance, tf.mul(gradient, 2)]) as tf.Scalar;
};

/** The type map's loss (CE + dice), 0 without a type map; counted in the `dense` part. */
const typeTotal = (predicted: tf.Tensor4D | undefined, targets: tf.Tensor4D | undefined): tf.Scalar => {
  if (predicted === undefined) return tf.scalar(0);
  if (targets === undefined) throw new RangeError("trainStep: a model with a type map needs its targets");
  if (predicted.shape.some((n, i) => n !== targets.shape[i])) {
    throw new RangeError(`trainStep: type logits ${predicted.shape} against targets ${targets.shape}`);
  }
  return typeLoss(predicted, targets);
};

// one reduction for the global norm rather than one read per parameter (stacked: an AddN of
// hundreds of inputs is one shader binding them all on webgpu)
const squaredNorm = (grads: tf.NamedTensorMap): tf.Scalar =>
  tf.sum(tf.stack(Object.values(grads).map((g) => tf.sum(tf.square(g))))) as tf.Scalar;

/** Clipped gradients (× `scale`) into AdamW: Adam's update, then the decoupled weight decay. */
const update = (
  variables: ReadonlyArray<tf.Variable>,
  optimizer: tf.Optimizer,
  options: TrainOptions,
  grads: tf.NamedTensorMap,
  scale: number | tf.Scalar,
): void => {
  const clipped = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, scale === 1 ? g : tf.mul(g, scale)]));
  optimizer.applyGradients(clipped as tf.NamedTensorMap);
  // decoupled weight decay on every tensor of rank ≥ 2 (matrices, kernels, embeddings), not on biases or norms
  for (const v of variables) {
    if (v.shape.length >= 2 && options.weightDecay > 0) {
      v.assign(tf.mul(v, 1 - options.learningRate * options.weightDecay));
    }
  }
};

/** The embeddings `[O, C, E]` of the class prompts of the batch's organs, and each image's organ index. */
const organText = (
  p: NonNullable<ModelParams<tf.Tensor>["vl"]>,
  c: NonNullable<ModelConfig["vl"]>,
  classNames: ReadonlyArray<string>,
  batch: Batch,
): OrganText => {
  const organs = [...new Set(batch.organs ?? [])];
  const ofImage = Int32Array.from(batch.organs ?? [], (o) => organs.indexOf(o));
  const C = classNames.length;
  const flat = embed(textFeatures(p, c, classNames, organPrompts(classNames, organs)), p.textual); // [O·C, E]
  return { text: tf.reshape(flat, [organs.length, C, -1]) as tf.Tensor3D, ofImage };
};

/** The vision–language losses of a step (zeros for the baseline). */
const visionLanguage = (
  params: ModelParams,
  config: ModelConfig,
  options: TrainOptions,
  batch: Batch,
  output: ReturnType<typeof applyModel>,
  lastLayer: Parameters<typeof matchedQueries>[0],
  present: Float32Array | undefined,
) => {
  if (config.vl === undefined || params.vl === undefined || output.queries === undefined) {
    return { total: tf.scalar(0), fix: tf.scalar(0), attr: tf.scalar(0), cent: tf.scalar(0), presence: tf.scalar(0) };
  }
  const classNames = config.vl.classNames.length > 0 ? config.vl.classNames : options.classNames;
  if (classNames === undefined) throw new RangeError("trainStep: the vision–language losses need classNames");
  const attributes = config.vl.attributes ? options.attributePrompts : undefined;
  if (config.vl.attributes && (attributes === undefined || batch.attributes === undefined)) {
    throw new RangeError("trainStep: L_attr needs attribute prompts and the batch's attribute labels");
  }
  const text = promptEmbeddings(params.vl, config.vl, classNames, attributes ?? []); // [C + ΣM_a, E]
  const matched = matchedQueries(lastLayer, batch.targets, output.queries.shape[1]);
  const classes = classNames.length;
  const organs = config.vl.organs === undefined ? undefined : organText(params.vl, config.vl, classNames, batch);
  const vl = visionLanguageLoss(
    params.vl,
    config.vl,
    text,
    classes,
    output.queries,
    matched,
    output.tokens,
    batch.attributes,
    organs,
  );
  // the multi-label head of feature fusion learns which classes an image holds (rule `predicted`)
  const fusion = config.vl.fusion;
  const presence = fusion?.rule === "predicted" && output.presence !== undefined && present !== undefined
    ? tf.losses.sigmoidCrossEntropy(tf.tensor2d(present, output.presence.shape), output.presence) as tf.Scalar
    : tf.scalar(0);
  return { ...vl, total: tf.add(vl.total, tf.mul(fusion?.weightPresence ?? 0, presence)) as tf.Scalar, presence };
};
