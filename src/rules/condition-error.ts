/** A problem inside a rule's condition or effect: the path below the rule and a sentence. */
export class RulePathError extends Error {
  constructor(
    readonly path: (string | number)[],
    message: string,
  ) {
    super(message);
    this.name = 'RulePathError';
  }
}
