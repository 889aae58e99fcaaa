#!/usr/bin/env node
import '../dist/nemesis-cli.js';
