// The little of jsdom that tests/design-doc.test.ts uses. @types/jsdom is not
// installed: it brings undici-types 8, whose fetch types clash with Node 24's
// (tests/faults/fuzz.ts stops type-checking).
declare module 'jsdom' {
  export class JSDOM {
    constructor(html?: string);
    readonly window: { readonly document: object } & Record<string, unknown>;
  }
}
