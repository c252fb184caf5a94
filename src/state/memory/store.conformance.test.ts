import { runStateStoreSuite } from '../conformance.js';
import { MemoryStateStore } from './store.js';

runStateStoreSuite({ name: 'memory', create: () => Promise.resolve(new MemoryStateStore()) });
