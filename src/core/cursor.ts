import { SyError } from './errors.js';

/**
 * The opaque cursor of list APIs (`?cursor=`): the position of the last item returned, as a
 * sort number (a time) and an id, base64url-encoded. Paging by position, not offset, stays
 * stable while items are added or removed.
 */
export function encodeCursor(at: number, id: string): string {
  return Buffer.from(`${at}:${id}`).toString('base64url');
}

/** The position in a cursor (undefined for none); SY_ERR_VALIDATION when it is not one of ours. */
export function decodeCursor(cursor: string | undefined): { at: number; id: string } | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const colon = text.indexOf(':');
  const at = Number(text.slice(0, colon));
  if (colon <= 0 || !Number.isSafeInteger(at)) {
    throw new SyError('SY_ERR_VALIDATION', 'cursor is not a cursor this server returned', {
      field: 'cursor',
    });
  }
  return { at, id: text.slice(colon + 1) };
}
