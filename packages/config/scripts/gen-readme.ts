// Rewrites the settings table in README.md from the schema.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { updateReadme } from '../src/docs.js';

const file = join(import.meta.dirname, '..', 'README.md');
const before = readFileSync(file, 'utf8');
const after = updateReadme(before);
if (after !== before) writeFileSync(file, after);
console.log(after === before ? 'README.md is current' : 'README.md updated');
