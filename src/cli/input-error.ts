/** A mistake in what the user typed: reported as one line, without a stack trace. */
export class InputError extends Error {}
