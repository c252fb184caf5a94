import { readFileSync } from 'node:fs';

// Replaced by the build (scripts/build.mjs) so the bundled CLI never reads package.json.
declare const __SWITCHYARD_VERSION__: string | undefined;

function fromPackageJson(): string {
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'switchyard' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here; look one folder up
    }
    dir = new URL('..', dir);
  }
  return '0.0.0-unknown';
}

/** The package version, e.g. "0.1.0". */
export const VERSION: string =
  typeof __SWITCHYARD_VERSION__ === 'string' ? __SWITCHYARD_VERSION__ : fromPackageJson();
