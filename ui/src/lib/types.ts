// The API's types, from the OpenAPI document of the node (`npm run types` regenerates
// schema.d.ts from ui/openapi.json, which a Rust test keeps equal to the node's document).
import type { components } from './schema';

export type S = components['schemas'];
export type Workspace = S['Workspace'];
export type WorkspaceSummary = S['WorkspaceSummary'];
export type Manifest = S['Manifest'];
export type Environment = S['Environment'];
export type ManifestError = S['ManifestError'];
export type Peer = S['Peer'];
// A catalog entry as the node lists it: the shared environment and whether it fits here.
export type CatalogEntry = S['CatalogItem'];
export type CloneJob = S['CloneJob'];
export type Run = S['Run'];
export type Candidate = S['Candidate'];
export type RunUsage = S['RunUsage'];
export type Resources = S['Resources'];
export type Requirements = S['Requirements'];
export type DiscoveryReport = S['DiscoveryReport'];
export type NodeEvent = S['Event'];
export type Health = S['Health'];
export type NodeInfo = S['NodeInfo'];
export type AccessRequest = S['AccessRequest'];

/** What the WebSocket sends besides events: a greeting, and a note that events were missed. */
export type Message =
  | NodeEvent
  | { type: 'hello'; node: NodeInfo }
  | { type: 'lagged'; missed: number };
