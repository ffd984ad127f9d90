// A Querier (what the DNS cache sits on) answering from a Zone in memory, with
// the records' TTLs and a negative TTL for void answers: the real cache over
// fixture data, with no sockets. Every question is counted.

import { DnsError } from '../../src/dns/types.js';
import type { DnsAnswer, DnsRecord, QType, Querier, RDataByType } from '../../src/dns/answer.js';
import type { Zone } from '../../src/dns/zone.js';

export class ZoneQuerier implements Querier {
  /** Every question, in order, as `TYPE name`. */
  readonly queries: string[] = [];

  constructor(
    public zone: Zone,
    /** TTL of NXDOMAIN/NODATA answers (the SOA minimum a server would send). */
    private readonly negativeTtl = 60,
  ) {}

  async query<T extends QType>(name: string, type: T): Promise<DnsAnswer<T>> {
    const qname = name.replace(/\.$/, '').toLowerCase();
    this.queries.push(`${type} ${qname}`);
    const r = this.zone.lookup(qname, type);
    switch (r.kind) {
      case 'timeout':
        throw new DnsError('TIMEOUT', qname, type);
      case 'servfail':
        throw new DnsError('SERVFAIL', qname, type);
      case 'nxdomain':
        return { qname, qtype: type, status: 'NXDOMAIN', records: [], chain: [], ttl: this.negativeTtl };
      case 'nodata':
        return { qname, qtype: type, status: 'NODATA', records: [], chain: [], ttl: this.negativeTtl };
      case 'answer': {
        const records = r.records
          .filter((rec) => rec.type === type)
          .map((rec): DnsRecord<RDataByType[T]> => {
            const data = type === 'TXT' ? (rec.data as string[]).join('') : rec.data;
            return { name: qname, ttl: rec.ttl, data: data as RDataByType[T] };
          });
        if (records.length === 0) return { qname, qtype: type, status: 'NODATA', records: [], chain: [], ttl: this.negativeTtl };
        return { qname, qtype: type, status: 'NOERROR', records, chain: [], ttl: Math.min(...records.map((x) => x.ttl)) };
      }
    }
  }

  /** How many times this question was asked (`TYPE name`). */
  asked(q: string): number {
    return this.queries.filter((x) => x === q).length;
  }
}
