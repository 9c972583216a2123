'use strict';
// require('nightshift'): Nightshift is an ES module. Node 20.19+ and 22.12+ (the versions
// package.json's engines name) load ES modules with require(); older ones cannot.
try {
  module.exports = require('./index.js');
} catch (err) {
  if (err && (err.code === 'ERR_REQUIRE_ESM' || err.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
    throw new Error(
      `nightshift is an ES module and this Node.js (${process.version}) cannot require() it: ` +
        "use import (import { defineJob } from 'nightshift', or await import('nightshift')), or Node.js ^20.19 or >= 22.12",
      { cause: err },
    );
  }
  throw err;
}
