import { runAuditStoreSuite } from '../conformance.js';
import { MemoryAuditStore } from './store.js';

runAuditStoreSuite('memory', { create: () => new MemoryAuditStore() });
