// pulser's version, in a module of its own so that `pulser version` and `pulser help` load nothing else.
export const VERSION = '0.1.0';
