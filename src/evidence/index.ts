// Evidence packs: what every pass desired, observed, planned and did, kept on disk for people,
// `pulser status` and the HTTP API.
export { EvidenceStore, type EvidenceStoreOptions, type Intent } from './store.ts';
export { PACK_FILES, PASS_ID_PATTERN, ENV_PATTERN, OUTPUT_LIMIT, excerpt, renderPack, type PackFile, type ResultJson } from './pack.ts';
