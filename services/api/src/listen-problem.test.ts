import { describe, expect, it } from 'vitest';
import { listenProblem } from './listen-problem.ts';

const err = (code: string) => Object.assign(new Error(`listen ${code}`), { code });

describe('listenProblem', () => {
  it('names the variable for the errors an operator fixes in the configuration', () => {
    expect(listenProblem(err('EADDRINUSE'), '127.0.0.1', 8080)).toMatch(/^API_PORT 8080 is in use/);
    expect(listenProblem(err('EACCES'), '127.0.0.1', 80)).toMatch(/^API_PORT 80 /);
    expect(listenProblem(err('EADDRNOTAVAIL'), '10.9.9.9', 8080)).toMatch(/^API_HOST 10\.9\.9\.9 /);
    expect(listenProblem(err('ENOTFOUND'), 'nowhere.invalid', 8080)).toMatch(/^API_HOST nowhere\.invalid /);
  });

  it('leaves any other error to be thrown as it is', () => {
    expect(listenProblem(err('EMFILE'), '127.0.0.1', 8080)).toBeUndefined();
    expect(listenProblem(new Error('x'), '127.0.0.1', 8080)).toBeUndefined();
    expect(listenProblem(undefined, '127.0.0.1', 8080)).toBeUndefined();
  });
});
