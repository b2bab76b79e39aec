// The softphone inside the test page: one JsSIP user agent, at most one call at a time.
//
// peer.mjs calls the methods of `window.phone` (each returns a promise) and receives every event
// through `window.callistoEvent({event: name, page_ms, …fields})`. Events: `registered`,
// `registration_failed`, `unregistered`, `disconnected`, `incoming`, `progress`, `accepted`,
// `confirmed`, `ended`, `failed`, `first_audio`, `first_frame`, `hold`, `unhold` (with their
// `originator`), `warning`.
//
// Network rules of the tests: no ICE servers at all (JsSIP's default is none too, but it is set
// explicitly), one bundled transport unless told otherwise, and only loopback candidates are put
// in our SDP. JsSIP does not trickle: it waits for the end of ICE gathering before it sends an
// offer or an answer, with no timeout of its own. Gathering host candidates on loopback ends
// within milliseconds, but to never wait on interfaces or candidate types the test does not use,
// a bundled description is sent as soon as its one transport has a loopback UDP candidate (with
// several transports, JsSIP waits for the end of gathering).
'use strict';

(() => {
  // No ICE server of any kind; `bundlePolicy` comes from the page options (max-bundle unless
  // a test needs to talk to a peer that does not bundle).
  function pcConfig() {
    return { iceServers: [], bundlePolicy: config.bundlePolicy, rtcpMuxPolicy: 'require' };
  }
  // How often the page polls getStats() for the first received audio packet and video frame.
  const FIRST_MEDIA_POLL_MS = 10;

  const config = {
    autoAnswer: false,
    autoAnswerVideo: true,
    preferH264: false,
    video: null,
    bundlePolicy: 'max-bundle',
  };
  let ua = null;
  let session = null;
  // performance.now() of the call() or answer() that started the current call, and of events.
  let startedAt = null;
  let confirmedAt = null;
  // When JsSIP handed the initial INVITE to the transport (outgoing calls).
  let inviteSentAt = null;
  let firstAudioAt = null;
  let firstFrameAt = null;
  let firstMediaTimer = null;
  let localStream = null;
  let remoteAnalyser = null;

  function emit(name, fields = {}) {
    const event = Object.assign({ event: name, page_ms: performance.now() }, fields);
    document.getElementById('status').textContent = name;
    if (typeof window.callistoEvent === 'function') {
      window.callistoEvent(event);
    }
  }

  function since(start) {
    return start === null ? null : Math.round((performance.now() - start) * 10) / 10;
  }

  function isLoopbackCandidate(line) {
    // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ …
    const fields = line.split(' ');
    const address = fields[4] || '';
    return address.startsWith('127.') || address === '::1';
  }

  // Drops every candidate that is not on loopback from an SDP we send.
  function loopbackOnly(sdp) {
    return sdp
      .split('\r\n')
      .filter((line) => !line.startsWith('a=candidate:') || isLoopbackCandidate(line.slice(2)))
      .join('\r\n');
  }

  // Orders the video codecs of every transceiver: H.264 Constrained Baseline with
  // packetization-mode=1 first, then the other H.264 profiles, then everything else (VP8, VP9,
  // AV1 and the RTX/RED/FEC entries, which must stay listed).
  function preferH264(pc) {
    const capabilities = RTCRtpReceiver.getCapabilities('video');
    if (!capabilities) {
      return;
    }
    const rank = (codec) => {
      if (codec.mimeType.toLowerCase() !== 'video/h264') {
        return 3;
      }
      const fmtp = codec.sdpFmtpLine || '';
      const baseline = /profile-level-id=42e0/i.test(fmtp);
      const mode1 = /packetization-mode=1/.test(fmtp);
      if (baseline && mode1) {
        return 0;
      }
      return mode1 ? 1 : 2;
    };
    const codecs = capabilities.codecs
      .map((codec, index) => ({ codec, index }))
      .sort((a, b) => rank(a.codec) - rank(b.codec) || a.index - b.index)
      .map((entry) => entry.codec);
    if (!codecs.some((codec) => rank(codec) === 0)) {
      emit('warning', { message: 'this Chromium offers no H.264 constrained baseline' });
    }
    for (const transceiver of pc.getTransceivers()) {
      const kind = transceiver.receiver.track && transceiver.receiver.track.kind;
      if (kind === 'video' && transceiver.direction !== 'stopped') {
        transceiver.setCodecPreferences(codecs);
      }
    }
  }

  // Hooks a new RTCPeerConnection: codec preferences before each offer/answer, remote tracks to
  // the <video> element.
  function onPeerConnection(pc, h264) {
    if (h264) {
      for (const method of ['createOffer', 'createAnswer']) {
        const original = pc[method].bind(pc);
        pc[method] = (...args) => {
          preferH264(pc);
          return original(...args);
        };
      }
    }
    const remote = new MediaStream();
    remoteAnalyser = null;
    pc.addEventListener('track', (event) => {
      remote.addTrack(event.track);
      if (event.track.kind === 'audio') {
        remoteAnalyser = analyse(event.track);
      }
      const element = document.getElementById('remote');
      element.srcObject = remote;
      element.play().catch((error) => emit('warning', { message: `play(): ${error}` }));
    });
  }

  // An analyser on a received audio track, so tests can check which tone arrives.
  function analyse(track) {
    const context = new AudioContext();
    const source = context.createMediaStreamSource(new MediaStream([track]));
    const analyser = context.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    source.connect(analyser);
    return { context, analyser };
  }

  // The strongest frequency of the received audio right now, and its level in dBFS.
  function audioPeak() {
    if (!remoteAnalyser) {
      return { hz: null, db: null };
    }
    const { context, analyser } = remoteAnalyser;
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    let best = 0;
    for (let i = 1; i < bins.length; i += 1) {
      if (bins[i] > bins[best]) {
        best = i;
      }
    }
    const db = Number.isFinite(bins[best]) ? Math.round(bins[best] * 10) / 10 : null;
    return { hz: Math.round((best * context.sampleRate) / analyser.fftSize), db, context_state: context.state };
  }

  // The level in dBFS of each frequency in `config.listenFor` in the received audio right now
  // (the strongest bin within 15 Hz of it), keyed by the frequency.
  function audioLevels() {
    const levels = {};
    if (!remoteAnalyser) {
      return levels;
    }
    const { context, analyser } = remoteAnalyser;
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    const perBin = context.sampleRate / analyser.fftSize;
    for (const hz of config.listenFor || []) {
      const low = Math.max(0, Math.floor((hz - 15) / perBin));
      const high = Math.min(bins.length - 1, Math.ceil((hz + 15) / perBin));
      let best = -Infinity;
      for (let i = low; i <= high; i += 1) {
        best = Math.max(best, bins[i]);
      }
      levels[String(hz)] = Number.isFinite(best) ? Math.round(best * 10) / 10 : null;
    }
    return levels;
  }

  async function getMedia(video) {
    const constraints = { audio: true, video: false };
    if (video) {
      const format = config.video || { width: 640, height: 480, fps: 30 };
      constraints.video = {
        width: { ideal: format.width },
        height: { ideal: format.height },
        frameRate: { ideal: format.fps },
      };
    }
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    document.getElementById('local').srcObject = stream;
    localStream = stream;
    return stream;
  }

  function stopMedia() {
    if (localStream) {
      localStream.getTracks().forEach((track) => track.stop());
      localStream = null;
    }
    if (remoteAnalyser) {
      remoteAnalyser.context.close().catch(() => {});
      remoteAnalyser = null;
    }
    if (firstMediaTimer !== null) {
      clearInterval(firstMediaTimer);
      firstMediaTimer = null;
    }
  }

  // Polls getStats() until the first audio packet and the first decoded video frame arrive, so
  // `first_frame` carries the time from call()/answer() to framesDecoded > 0.
  function watchFirstMedia(pc, wantVideo) {
    let busy = false;
    firstMediaTimer = setInterval(async () => {
      if (busy) {
        return;
      }
      busy = true;
      try {
        const report = await pc.getStats();
        report.forEach((entry) => {
          if (entry.type !== 'inbound-rtp') {
            return;
          }
          if (entry.kind === 'audio' && firstAudioAt === null && entry.packetsReceived > 0) {
            firstAudioAt = performance.now();
            emit('first_audio', { ms_since_start: since(startedAt), ms_since_invite: since(inviteSentAt) });
          }
          if (entry.kind === 'video' && firstFrameAt === null && entry.framesDecoded > 0) {
            firstFrameAt = performance.now();
            emit('first_frame', {
              ms_since_start: since(startedAt),
              ms_since_invite: since(inviteSentAt),
              ms_since_confirmed: confirmedAt === null ? null : Math.round((firstFrameAt - confirmedAt) * 10) / 10,
              width: entry.frameWidth,
              height: entry.frameHeight,
            });
          }
        });
        if (firstAudioAt !== null && (firstFrameAt !== null || !wantVideo)) {
          clearInterval(firstMediaTimer);
          firstMediaTimer = null;
        }
      } finally {
        busy = false;
      }
    }, FIRST_MEDIA_POLL_MS);
  }

  function responseStatus(event) {
    return event && event.response ? event.response.status_code : null;
  }

  // Follows a call's events. `h264` is the codec preference for a peer connection JsSIP creates
  // later (incoming calls create theirs on answer); null when it exists already.
  function attachSession(newSession, h264, wantVideo) {
    session = newSession;
    confirmedAt = null;
    inviteSentAt = null;
    firstAudioAt = null;
    firstFrameAt = null;
    if (h264 !== null) {
      session.on('peerconnection', (event) => onPeerConnection(event.peerconnection, h264));
    }
    session.on('icecandidate', (event) => {
      const { candidate } = event.candidate;
      const bundled = config.bundlePolicy === 'max-bundle';
      if (bundled && / udp /i.test(candidate) && isLoopbackCandidate(candidate)) {
        event.ready();
      }
    });
    session.on('sdp', (event) => {
      if (event.originator === 'local') {
        event.sdp = loopbackOnly(event.sdp);
      }
    });
    session.on('sending', () => {
      inviteSentAt = performance.now();
    });
    session.on('progress', (event) => emit('progress', { status: responseStatus(event) }));
    // For a callee, ms_since_start runs from the camera and microphone being open (answer())
    // to the 200 OK being sent: making the answer and gathering ICE.
    session.on('accepted', () => emit('accepted', { ms_since_start: since(startedAt) }));
    session.on('hold', (event) => emit('hold', { originator: event.originator }));
    session.on('unhold', (event) => emit('unhold', { originator: event.originator }));
    session.on('confirmed', () => {
      confirmedAt = performance.now();
      emit('confirmed', { ms_since_start: since(startedAt), ms_since_invite: since(inviteSentAt) });
      if (session && session.connection) {
        watchFirstMedia(session.connection, wantVideo);
      }
    });
    const finish = (name) => (event) => {
      emit(name, {
        originator: event.originator,
        cause: event.cause,
        status: event.message && event.message.status_code ? event.message.status_code : null,
      });
      stopMedia();
      session = null;
    };
    session.on('ended', finish('ended'));
    session.on('failed', finish('failed'));
  }

  function offersVideo(request) {
    return typeof request.body === 'string' && /\r?\nm=video [1-9]/.test(request.body);
  }

  const phone = {
    // Page-wide options: { autoAnswer, autoAnswerVideo, preferH264, video: {width,height,fps},
    // bundlePolicy, debug }.
    configure(options) {
      Object.assign(config, options);
      if (options.debug) {
        JsSIP.debug.enable('JsSIP:*');
      } else {
        JsSIP.debug.disable();
      }
    },

    // Registers `uri` with `password` through the WebSocket `ws`; resolves once started, the
    // outcome comes as `registered` or `registration_failed`.
    register({ ws, uri, password, authorizationUser, displayName, expires }) {
      if (ua) {
        ua.stop();
      }
      const socket = new JsSIP.WebSocketInterface(ws);
      ua = new JsSIP.UA({
        sockets: [socket],
        uri,
        password,
        authorization_user: authorizationUser || undefined,
        display_name: displayName || undefined,
        register: true,
        register_expires: expires || 600,
        user_agent: 'callisto-test-browser (JsSIP)',
        // One connection attempt at a time, retried fast: the registrar is on loopback.
        connection_recovery_min_interval: 1,
        connection_recovery_max_interval: 4,
      });
      ua.on('registered', (event) => emit('registered', { status: responseStatus(event) }));
      ua.on('unregistered', (event) => emit('unregistered', { status: responseStatus(event) }));
      ua.on('registrationFailed', (event) =>
        emit('registration_failed', { cause: event.cause, status: responseStatus(event) }));
      ua.on('disconnected', (event) => emit('disconnected', { code: event.code, reason: event.reason }));
      ua.on('newRTCSession', (event) => {
        if (event.originator !== 'remote') {
          return;
        }
        if (session) {
          event.session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
          return;
        }
        const video = offersVideo(event.request);
        attachSession(event.session, Boolean(config.preferH264), video);
        emit('incoming', {
          from: event.request.from.uri.toString(),
          to: event.request.to.uri.toString(),
          call_id: event.request.call_id,
          video,
        });
        if (config.autoAnswer) {
          phone.answer({ video: config.autoAnswerVideo && video }).catch((error) =>
            emit('warning', { message: `auto-answer: ${error}` }));
        }
      });
      ua.start();
    },

    unregister() {
      if (ua) {
        ua.unregister({ all: false });
      }
    },

    // Calls `target` (a SIP URI); video unless `video` is false. `preferH264` overrides the
    // page-wide option for this call.
    async call({ target, video = true, preferH264: h264 }) {
      if (!ua) {
        throw new Error('not registered');
      }
      if (session) {
        throw new Error('a call is in progress');
      }
      const stream = await getMedia(video);
      const useH264 = h264 === undefined ? config.preferH264 : h264;
      startedAt = performance.now();
      // JsSIP creates the peer connection inside call(): eventHandlers hook it there.
      const created = ua.call(target, {
        mediaStream: stream,
        pcConfig: pcConfig(),
        rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: video },
        eventHandlers: {
          peerconnection: (event) => onPeerConnection(event.peerconnection, useH264),
        },
      });
      attachSession(created, null, video);
      return { call_id: created.request ? created.request.call_id : null };
    },

    // Answers the ringing call, with video unless `video` is false.
    async answer({ video = true } = {}) {
      if (!session || session.direction !== 'incoming') {
        throw new Error('no incoming call');
      }
      const stream = await getMedia(video);
      startedAt = performance.now();
      session.answer({
        mediaStream: stream,
        pcConfig: pcConfig(),
        rtcAnswerConstraints: {},
      });
      return {};
    },

    hangup() {
      if (session) {
        session.terminate();
      }
    },

    // Puts the call on hold (`on`: a re-INVITE whose offer says a=sendonly) or takes it off.
    // Resolves once the peer accepted the new offer; rejects when the call ended over it
    // (JsSIP hangs up a call whose hold the peer refused).
    hold({ on = true } = {}) {
      if (!session) {
        throw new Error('no call');
      }
      const current = session;
      return new Promise((resolve, reject) => {
        const ended = () => reject(new Error('the call ended'));
        current.once('ended', ended);
        current.once('failed', ended);
        const done = () => {
          current.removeListener('ended', ended);
          current.removeListener('failed', ended);
          resolve({ held: current.isOnHold().local });
        };
        const started = on ? current.hold({}, done) : current.unhold({}, done);
        if (!started) {
          reject(new Error('JsSIP cannot change the hold now'));
        }
      });
    },

    // A summary of the current call's RTCPeerConnection.getStats().
    async stats() {
      if (!session || !session.connection) {
        return { in_call: false };
      }
      const report = await session.connection.getStats();
      return Object.assign(
        {
          in_call: true,
          ms_since_start: since(startedAt),
          first_frame_ms: firstFrameAt === null ? null : Math.round((firstFrameAt - startedAt) * 10) / 10,
          first_audio_ms: firstAudioAt === null ? null : Math.round((firstAudioAt - startedAt) * 10) / 10,
          remote_audio_peak: audioPeak(),
          remote_audio_levels: audioLevels(),
        },
        summarize(report),
      );
    },
  };

  function pick(entry, keys) {
    const out = {};
    for (const key of keys) {
      out[key] = entry[key] === undefined ? null : entry[key];
    }
    return out;
  }

  function summarize(report) {
    const byId = new Map();
    report.forEach((entry) => byId.set(entry.id, entry));
    const codecOf = (entry) => {
      const codec = byId.get(entry.codecId);
      return codec ? { codec: codec.mimeType, codec_fmtp: codec.sdpFmtpLine || null } : { codec: null, codec_fmtp: null };
    };
    const summary = {
      inbound_audio: null,
      inbound_video: null,
      outbound_audio: null,
      outbound_video: null,
      candidate_pair: null,
    };
    let transport = null;
    report.forEach((entry) => {
      if (entry.type === 'inbound-rtp' && entry.kind === 'audio') {
        summary.inbound_audio = Object.assign(pick(entry, [
          'ssrc', 'packetsReceived', 'packetsLost', 'bytesReceived', 'jitter', 'audioLevel',
          'totalAudioEnergy', 'totalSamplesDuration', 'totalSamplesReceived', 'concealedSamples',
          'jitterBufferDelay', 'jitterBufferEmittedCount',
        ]), codecOf(entry));
      } else if (entry.type === 'inbound-rtp' && entry.kind === 'video') {
        summary.inbound_video = Object.assign(pick(entry, [
          'ssrc', 'packetsReceived', 'packetsLost', 'bytesReceived', 'framesReceived',
          'framesDecoded', 'keyFramesDecoded', 'framesDropped', 'frameWidth', 'frameHeight',
          'framesPerSecond', 'pliCount', 'nackCount', 'firCount', 'freezeCount',
          'totalDecodeTime', 'decoderImplementation', 'jitterBufferDelay',
          'jitterBufferEmittedCount',
        ]), codecOf(entry));
      } else if (entry.type === 'outbound-rtp' && entry.kind === 'audio') {
        summary.outbound_audio = Object.assign(pick(entry, [
          'ssrc', 'packetsSent', 'bytesSent', 'retransmittedPacketsSent',
        ]), codecOf(entry));
      } else if (entry.type === 'outbound-rtp' && entry.kind === 'video') {
        summary.outbound_video = Object.assign(pick(entry, [
          'ssrc', 'packetsSent', 'bytesSent', 'framesEncoded', 'framesSent', 'keyFramesEncoded',
          'frameWidth', 'frameHeight', 'framesPerSecond', 'pliCount', 'nackCount', 'firCount',
          'retransmittedPacketsSent', 'targetBitrate', 'totalEncodeTime',
          'encoderImplementation', 'qualityLimitationReason',
        ]), codecOf(entry));
      } else if (entry.type === 'transport') {
        transport = entry;
      }
    });
    let pair = transport && transport.selectedCandidatePairId ? byId.get(transport.selectedCandidatePairId) : null;
    if (!pair) {
      report.forEach((entry) => {
        if (!pair && entry.type === 'candidate-pair' && entry.nominated && entry.state === 'succeeded') {
          pair = entry;
        }
      });
    }
    if (pair) {
      const candidate = (id) => {
        const entry = byId.get(id);
        return entry ? pick(entry, ['address', 'port', 'protocol', 'candidateType']) : null;
      };
      summary.candidate_pair = Object.assign(pick(pair, [
        'state', 'nominated', 'currentRoundTripTime', 'bytesSent', 'bytesReceived',
      ]), { local: candidate(pair.localCandidateId), remote: candidate(pair.remoteCandidateId) });
    }
    if (transport) {
      summary.transport = pick(transport, ['dtlsState', 'iceState', 'srtpCipher', 'tlsVersion']);
    }
    return summary;
  }

  window.phone = phone;
})();
