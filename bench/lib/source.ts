import { execFileSync } from 'node:child_process';

/** The commit measured, and whether src/ had uncommitted changes (the engine is under work). */
export function sourceVersion(): { commit: string; srcDirty: boolean } | undefined {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return {
      commit: git('rev-parse', '--short', 'HEAD'),
      srcDirty: git('status', '--porcelain', 'src') !== '',
    };
  } catch {
    return undefined;
  }
}
