// Reads the capture clock that the sim camera burns into its pictures
// (device/sim: RenderFrameAt, ReadCaptureClock) from an image or video
// element: blocks of cell x cell pixels, cell = max(8, w/40) rounded down to
// a multiple of 8, 20 a row from (cell, cell); the clock is blocks 40..79
// (rows 2 and 3): 32 bits of Unix milliseconds mod 2^32, then their CRC-8
// (polynomial 0x07) xor 0x55, most significant bit first, white 1, black 0.
// readCaptureClock(el) returns the milliseconds, or null when a block is
// unclear or the CRC does not match.
(() => {
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  function crc8(v) {
    let crc = 0;
    for (let i = 3; i >= 0; i--) {
      crc ^= (v >>> (8 * i)) & 0xff;
      for (let b = 0; b < 8; b++) crc = (crc & 0x80) ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
    }
    return crc ^ 0x55;
  }
  window.readCaptureClock = function (el) {
    const w = el.videoWidth || el.naturalWidth, h = el.videoHeight || el.naturalHeight;
    const cell = Math.max(8, Math.floor(w / 40) & ~7);
    if (!w || !h || 22 * cell > w || 6 * cell > h) return null;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    ctx.drawImage(el, 0, 0, w, h);
    const rw = 21 * cell, rh = 5 * cell;
    const px = ctx.getImageData(0, 0, rw, rh).data;
    const q = cell / 4;
    let value = 0, check = 0;
    for (let i = 40; i < 80; i++) {
      const cx = cell + (i % 20) * cell, cy = cell + Math.floor(i / 20) * cell;
      let sum = 0, n = 0;
      for (let y = cy + q; y < cy + cell - q; y++) {
        for (let x = cx + q; x < cx + cell - q; x++) {
          const o = (y * rw + x) * 4;
          sum += 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
          n++;
        }
      }
      const mean = sum / n;
      let bit;
      if (mean > 160) bit = 1; else if (mean < 96) bit = 0; else return null;
      if (i < 72) value = ((value << 1) | bit) >>> 0; else check = (check << 1) | bit;
    }
    return crc8(value) === check ? value : null;
  };
})();
