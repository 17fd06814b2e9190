/**
 * ivaan: train and run IVAAN (nuclei instance segmentation and classification for H&E pathology)
 * as a typed, cached pipeline.
 *
 * This is the public API. Today it holds the pipeline framework (`pipeline/`): stages, typed
 * pipelines, content-addressed caching, codecs and the runner. The IVAAN stages (`stages/`) join
 * it as they land; see the README for what exists.
 */
export * from "./pipeline/mod.ts";
