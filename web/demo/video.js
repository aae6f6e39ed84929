// The video page: attaches hls.js to the HLS player (or the browser's own HLS
// support where it has one) and shows each player's state under it. A player
// error is also kept in the video element's data-error attribute.
(function () {
  'use strict';

  const src = '/video/hls/index.m3u8';

  function fail(video, msg) {
    video.dataset.error = msg;
    show(video);
  }

  function attachHLS(video) {
    if (window.Hls && Hls.isSupported()) {
      // Until the player is started, buffer one segment (its first frame
      // shows), as preload=metadata does for the MP4; then the default.
      const hls = new Hls({ maxBufferLength: 2 });
      video.addEventListener('play', () => { hls.config.maxBufferLength = 30; }, { once: true });
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (data.fatal) fail(video, 'hls.js: ' + data.type + ' ' + data.details);
      });
      hls.loadSource(src);
      hls.attachMedia(video);
      video.dataset.engine = 'hls.js ' + Hls.version + ' (MSE)';
      window.verityHLS = hls;
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = src;
      video.dataset.engine = 'native HLS';
    } else {
      fail(video, 'this browser has neither Media Source Extensions nor native HLS');
    }
  }

  function ranges(tr) {
    const out = [];
    for (let i = 0; i < tr.length; i++) out.push(tr.start(i).toFixed(1) + '–' + tr.end(i).toFixed(1) + ' s');
    return out.join(', ') || 'none';
  }

  function show(video) {
    const el = document.querySelector('.player-state[data-for="' + video.id + '"]');
    if (!el) return;
    const state = video.dataset.error ? 'error: ' + video.dataset.error
      : video.error ? 'error: ' + video.error.code + ' ' + (video.error.message || '')
      : video.paused ? 'paused' : 'playing';
    el.textContent = (video.dataset.engine ? video.dataset.engine + ' · ' : '') + state +
      ' · ' + video.currentTime.toFixed(1) + ' s · buffered ' + ranges(video.buffered);
  }

  document.addEventListener('DOMContentLoaded', () => {
    const hls = document.getElementById('hls');
    if (hls) attachHLS(hls);
    for (const video of document.querySelectorAll('video.player')) {
      video.addEventListener('error', () => {
        if (video.error) video.dataset.error = 'media error ' + video.error.code + ' ' + (video.error.message || '');
      });
      for (const ev of ['loadedmetadata', 'playing', 'pause', 'seeked', 'timeupdate', 'progress', 'error']) {
        video.addEventListener(ev, () => show(video));
      }
      show(video);
    }
  });
})();
