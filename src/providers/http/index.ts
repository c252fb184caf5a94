export {
  HttpTransport,
  DEFAULT_CONNECTIONS,
  DEFAULT_MAX_RESPONSE,
  isTransientStatus,
  parseRetryAfter,
  readCapped,
  type HttpRequest,
  type HttpResult,
  type HttpTransportOptions,
} from './transport.js';
export {
  classifyAddress,
  checkLiteralHost,
  guardedLookup,
  blockedError,
  type AddressClass,
} from './ssrf.js';
export {
  SIGNATURE_HEADER,
  DEFAULT_SIGNATURE_TOLERANCE_SEC,
  signBody,
  verifySignature,
} from './signing.js';
export {
  compileUrl,
  compileHeaders,
  compileJson,
  renderTemplate,
  templateError,
  maskUrl,
  type UrlTemplate,
  type HeadersTemplate,
} from './request-template.js';
