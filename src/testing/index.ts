// events-library/testing: the test kit. An in-process network of buses, signed requests for
// middleware tests, and a recorder of emitted events. Nothing here opens a socket.
export { TestNetwork, createTestNetwork } from './network.js';
export { InProcessTransport } from './in-process-transport.js';
export { recordEmits } from './record-emits.js';
export { signedRequest } from './signed-request.js';
export { assertCompatible } from './assert-compatible.js';

export type { NetworkBus, NetworkDeadLetter, NetworkEmit, SettleOptions, TestNetworkOptions } from './network.js';
export type { InProcessRoute, InProcessTransportOptions } from './in-process-transport.js';
export type { EmitRecorder, RecordedEmit } from './record-emits.js';
export type { SignedRequest, SignedRequestOptions } from './signed-request.js';
