import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rdapErrorText, summariseRdap, vcard } from './parse.ts';

const recorded = (name: string): unknown => JSON.parse(readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8'));

describe('summariseRdap', () => {
  it('summarises an ARIN ip network', () => {
    expect(summariseRdap(recorded('arin-ip-network.json'))).toEqual({
      objectClassName: 'ip network',
      handle: 'NET-8-8-8-0-2',
      name: 'GOGL',
      type: 'DIRECT ALLOCATION',
      ipVersion: 'v4',
      startAddress: '8.8.8.0',
      endAddress: '8.8.8.255',
      cidrs: ['8.8.8.0/24'],
      parentHandle: 'NET-8-0-0-0-0',
      originAutnums: [15169],
      status: ['active'],
      events: { lastChanged: '2023-12-28T17:24:56-05:00', registration: '2023-12-28T17:24:33-05:00' },
      registrant: 'Google LLC',
      abuseEmail: 'network-abuse@google.com',
      entities: [
        {
          handle: 'GOGL',
          roles: ['registrant'],
          name: 'Google LLC',
          kind: 'org',
          address: '1600 Amphitheatre Parkway, Mountain View, CA, 94043, United States',
        },
        {
          handle: 'ABUSE5250-ARIN',
          roles: ['abuse'],
          name: 'Abuse',
          organization: 'Abuse',
          kind: 'group',
          email: 'network-abuse@google.com',
          phone: '+1-650-253-0000',
          address: '1600 Amphitheatre Parkway, Mountain View, CA, 94043, United States',
        },
        {
          handle: 'ZG39-ARIN',
          roles: ['administrative', 'technical'],
          name: 'Google LLC',
          organization: 'Google LLC',
          kind: 'group',
          email: 'arin-contact@google.com',
          phone: '+1-650-253-0000',
        },
      ],
      port43: 'whois.arin.net',
    });
  });

  it('summarises a RIPE ip network (country, entities without vCards)', () => {
    const summary = summariseRdap(recorded('ripe-ip-network.json'));
    expect(summary).toMatchObject({
      objectClassName: 'ip network',
      handle: '193.0.0.0 - 193.0.7.255',
      name: 'RIPE-NCC',
      country: 'NL',
      cidrs: ['193.0.0.0/21'],
      abuseEmail: 'abuse@ripe.net',
      port43: 'whois.ripe.net',
      events: { registration: '2010-09-24T10:25:18Z', lastChanged: '2022-09-28T15:00:05Z' },
    });
    expect(summary.entities).toContainEqual({ handle: 'RIPE-NCC-MNT', roles: ['registrant'] });
    expect(summary.entities).toContainEqual(
      expect.objectContaining({ handle: 'ops4-ripe', address: 'Stationsplein 11, 1012 AB Amsterdam, Netherlands', phone: '+31 20 535 4444' }),
    );
  });

  it('summarises a Verisign domain', () => {
    expect(summariseRdap(recorded('verisign-domain.json'))).toEqual({
      objectClassName: 'domain',
      handle: '2336799_DOMAIN_COM-VRSN',
      ldhName: 'example.com',
      status: ['client delete prohibited', 'client transfer prohibited', 'client update prohibited'],
      events: {
        registration: '1995-08-14T04:00:00Z',
        expiration: '2025-08-13T04:00:00Z',
        lastChanged: '2024-08-14T07:01:34Z',
        lastUpdateOfRdapDatabase: '2025-01-17T10:23:41Z',
      },
      registrar: { name: 'RESERVED-Internet Assigned Numbers Authority', ianaId: '376' },
      entities: [
        { handle: '376', roles: ['registrar'], name: 'RESERVED-Internet Assigned Numbers Authority', ianaRegistrarId: '376' },
        { roles: ['abuse'] },
      ],
      nameservers: ['a.iana-servers.net', 'b.iana-servers.net'],
      delegationSigned: true,
    });
  });

  it('copes with something that is not an RDAP object', () => {
    expect(summariseRdap(null)).toEqual({});
    expect(summariseRdap({ entities: 'nope', events: [{}], vcardArray: 1 })).toEqual({});
  });
});

describe('vcard', () => {
  it('flattens structured values and strips tel: URIs', () => {
    expect(
      vcard(['vcard', [['fn', {}, 'text', 'Jane Doe'], ['org', {}, 'text', ['Example Corp', 'Ops']], ['tel', {}, 'uri', 'tel:+1.5550100']]]),
    ).toEqual({ name: 'Jane Doe', organization: 'Example Corp, Ops', phone: '+1.5550100' });
  });
});

describe('rdapErrorText', () => {
  it('joins title and description', () => {
    expect(rdapErrorText(recorded('error-not-found.json'))).toBe('Not Found: The object could not be found.');
    expect(rdapErrorText('<html>')).toBeUndefined();
  });
});
