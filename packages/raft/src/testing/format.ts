import type { Entry, Message } from '../types.js';

function ents(es: readonly Entry[]): string {
  if (es.length === 0) return '[]';
  if (es.length <= 4) return `[${es.map((e) => `${e.term}/${e.index}`).join(' ')}]`;
  const a = es[0]!;
  const b = es[es.length - 1]!;
  return `[${a.term}/${a.index}..${b.term}/${b.index} (${es.length})]`;
}

/** A message as one short, stable line, for traces and failure reports. */
export function formatMessage(m: Message): string {
  const h = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'append':
      return `${h} prev=${m.prevTerm}/${m.prevIndex} ents=${ents(m.entries)} commit=${m.commit}`;
    case 'appendResponse':
      return m.reject
        ? `${h} REJECT idx=${m.index} hint=${m.hintTerm}/${m.hintIndex}`
        : `${h} idx=${m.index}`;
    case 'vote':
    case 'preVote':
      return `${h} last=${m.lastTerm}/${m.lastIndex}${m.transfer ? ' transfer' : ''}`;
    case 'voteResponse':
    case 'preVoteResponse':
      return `${h}${m.reject ? ' REJECT' : ''}`;
    case 'heartbeat':
      return `${h} commit=${m.commit}${m.readRound ? ` read=${m.readRound}` : ''}`;
    case 'heartbeatResponse':
      return `${h}${m.readRound ? ` read=${m.readRound}` : ''}`;
    case 'snapshot':
      return `${h} snap=${m.snapshot.term}/${m.snapshot.index}`;
    case 'timeoutNow':
      return h;
    case 'readIndex':
      return `${h} req=${m.requestId}`;
    case 'readIndexResponse':
      return `${h} req=${m.requestId} idx=${m.index}${m.reject ? ' REJECT' : ''}`;
  }
}
