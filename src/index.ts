export { createGateway } from './gateway/gateway.js';
export type { Gateway, GatewayOptions, OutcomeListener } from './gateway/gateway.js';
export { GatewayMetrics } from './gateway/metrics.js';
export { ActionInputSchema } from './core/action.js';
export type { Action, ActionInput } from './core/action.js';
export { OutcomeSchema } from './core/outcome.js';
export { succeeded } from './core/outcome.js';
export type {
  Outcome,
  OutcomeKind,
  ExecutedOutcome,
  FailedOutcome,
  ReroutedOutcome,
  SuppressedOutcome,
  DeduplicatedOutcome,
  ThrottledOutcome,
  RetryingOutcome,
  CircuitOpenOutcome,
  AttemptError,
  OutcomeError,
  ProviderResponse,
} from './core/outcome.js';
export { ERRORS, SyError, isSyError } from './core/errors.js';
export type { ErrorCode } from './core/errors.js';
export { loadConfigFile, parseConfigText, resolveConfig } from './config/load.js';
export type { ConfigInput, ResolvedConfig } from './config/schema.js';
export {
  ProviderError,
  ProviderThrottledError,
  signalError,
  maskHeaders,
} from './providers/provider.js';
export type {
  Provider,
  ProviderType,
  ProviderPreview,
  ExecuteContext,
  ProviderFactoryContext,
} from './providers/provider.js';
export { compileText, compileValue, templateView } from './providers/template.js';
export type { TextTemplate, ValueTemplate, TemplateView } from './providers/template.js';
export { signBody, verifySignature, SIGNATURE_HEADER } from './providers/http/signing.js';
export type {
  Executor,
  ProviderStatus,
  DeadLetter,
  DeadLetterFilter,
  RunOutcome,
} from './executor/executor.js';
export type { ProviderPolicy } from './executor/policy.js';
export type { AuditSink } from './audit/sink.js';
export { SwitchyardClient } from './client/client.js';
export type {
  ClientOptions,
  ProviderInfo,
  DeadLetterSummary,
  DeadLetterEntry,
  DeadLetterPage,
} from './client/client.js';
export { ManualClock, systemClock } from './core/clock.js';
export type { Clock } from './core/clock.js';
export type { Evaluation } from './gateway/gateway.js';
export { MemoryStateStore } from './state/memory/store.js';
export type {
  StateStore,
  GateOp,
  GateResult,
  SettleOp,
  DedupOp,
  ThrottleOp,
  IdempotencyOp,
} from './state/store.js';
export { RuleEngine } from './rules/engine.js';
export type { RuleStatus, RuleExplanation } from './rules/engine.js';
export type { CompiledRule } from './rules/load.js';
export type { Plan } from './rules/planner.js';
