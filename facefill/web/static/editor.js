// facefill editor: plain JS, no build step. Served by `facefill serve` next to the HTTP API.
//
// The photo is shown scaled (zoom/pan) and always sent at full resolution. Mask, sketch and colour are
// drawn on layer canvases the photo's size (scaled down only for photos over LAYER_MAX_PIXELS, then the
// server resizes them: resize_mask=true). Edits are kept as a list of actions (strokes, clear, mask upload,
// new image from a run) replayed on undo/redo, so history costs little memory at any photo size.
"use strict";

(() => {
  const LAYER_MAX_PIXELS = 16e6;
  const MASK_COLOR = "#ff2d55";
  const SKETCH_COLOR = "#ffffff";
  const $ = (id) => document.getElementById(id);

  const el = {
    viewport: $("viewport"), stage: $("stage"), photo: $("photo"), cursor: $("cursor"),
    mask: $("layer-mask"), sketch: $("layer-sketch"), color: $("layer-color"),
    openFile: $("open-file"), maskFile: $("mask-file"), maskDownload: $("mask-download"),
    size: $("brush-size"), sizeValue: $("brush-size-value"), picker: $("color-picker"),
    undo: $("undo"), redo: $("redo"), clear: $("clear"), model: $("model"), run: $("run"),
    compare: $("compare"), download: $("download"), busy: $("busy"), busyText: $("busy-text"),
    status: $("status"), info: $("info"),
    zoomIn: $("zoom-in"), zoomOut: $("zoom-out"), zoomFit: $("zoom-fit"),
  };
  const ctx = {};
  for (const k of ["mask", "sketch", "color"]) ctx[k] = el[k].getContext("2d", { willReadFrequently: true });

  const state = {
    original: null,   // the opened image: {blob, name, url, width, height}
    history: [],      // actions; the first `pointer` of them are applied
    pointer: 0,
    layerW: 0, layerH: 0,
    tool: "mask",
    size: 30,
    models: [],
    zoom: 1, panX: 0, panY: 0,
    stroke: null,     // the action being drawn
    pan: null,        // {x, y, panX, panY} while dragging the view
    pointerId: null,  // the one pointer drawing or panning (a second finger or a palm is ignored)
    spaceHeld: false,
    busy: false,
    showingBefore: false,
  };

  // ------------------------------------------------------------------------------------------ status

  function setStatus(text, kind = "") {
    el.status.textContent = text;
    el.status.className = kind;
  }
  const showError = (text) => setStatus(text, "error");

  function setBusy(on, text = "") {
    state.busy = on;
    el.busy.hidden = !on;
    el.busyText.textContent = text;
    el.viewport.setAttribute("aria-busy", on ? "true" : "false");
    if (on) document.body.dataset.busy = "1"; else delete document.body.dataset.busy;
    updateButtons();
  }

  // ------------------------------------------------------------------------------------------ models

  async function loadModels() {
    let body;
    try {
      const res = await fetch("/api/v1/models");
      body = await res.json();
      if (!res.ok) throw new Error(body.error || res.statusText);
    } catch (err) {
      showError(`Could not list the models: ${err.message}. Is facefill serve running?`);
      return;
    }
    state.models = body.models;
    el.model.textContent = "";
    for (const m of body.models) {
      const opt = document.createElement("option");
      opt.value = m.name;
      opt.textContent = m.available ? m.name : `${m.name} (no weights)`;
      opt.disabled = !m.available;
      opt.title = m.description;
      el.model.append(opt);
    }
    const first = body.models.find((m) => m.name === body.default && m.available) || body.models.find((m) => m.available);
    if (first) el.model.value = first.name;
    document.body.dataset.models = "loaded";
    onModelChange();
  }

  const currentModel = () => state.models.find((m) => m.name === el.model.value);
  const takes = (input) => { const m = currentModel(); return !!m && m.inputs.includes(input); };

  function onModelChange() {
    for (const input of ["sketch", "color"]) {
      const ok = takes(input);
      document.querySelector(`[data-tool="${input}"]`).hidden = !ok;
      el[input].classList.toggle("off", !ok);   // show what will be sent
      if (input === "color") el.picker.hidden = !ok;
      if (!ok && state.tool === input) setTool("mask");
    }
    const m = currentModel();
    if (m) el.run.title = `Fill the masked region with ${m.name} (Ctrl+Enter): ${m.description}`;
  }

  // ------------------------------------------------------------------------------------------ tools

  function setTool(tool) {
    state.tool = tool;
    for (const b of document.querySelectorAll("[data-tool]")) {
      b.classList.toggle("active", b.dataset.tool === tool);
      b.setAttribute("aria-checked", b.dataset.tool === tool ? "true" : "false");
    }
  }

  function setSize(px) {
    state.size = Math.max(Number(el.size.min), Math.min(Number(el.size.max), Math.round(px)));
    el.size.value = String(state.size);
    el.sizeValue.textContent = String(state.size);
    updateCursorSize();
  }

  // ------------------------------------------------------------------------------------------ images

  async function loadImage(blob, name) {
    const url = URL.createObjectURL(blob);
    const img = new Image();
    img.src = url;
    try {
      await img.decode();
    } catch {
      URL.revokeObjectURL(url);
      throw new Error(`this browser cannot display ${name}; convert it to PNG or JPEG`);
    }
    // naturalWidth/Height follow the EXIF orientation, as the server does (imageio applies it)
    return { blob, name, url, width: img.naturalWidth, height: img.naturalHeight };
  }

  async function openFile(file) {
    if (!file) return;
    if (state.busy) return showError("Wait for the running model to finish.");
    if (file.type && !file.type.startsWith("image/")) return showError(`${file.name} is not an image (${file.type}).`);
    let image;
    try {
      image = await loadImage(file, file.name || "image");
    } catch (err) {
      return showError(`Could not open the image: ${err.message}.`);
    }
    if (state.busy) {   // a run started while the photo was decoding: its result belongs to the old photo
      URL.revokeObjectURL(image.url);
      return showError("Wait for the running model to finish.");
    }
    for (const a of state.history) if (a.type === "image") URL.revokeObjectURL(a.image.url);
    if (state.original) URL.revokeObjectURL(state.original.url);
    state.original = image;
    state.history = [];
    state.pointer = 0;
    const scale = Math.min(1, Math.sqrt(LAYER_MAX_PIXELS / (image.width * image.height)));
    state.layerW = Math.max(1, Math.round(image.width * scale));
    state.layerH = Math.max(1, Math.round(image.height * scale));
    for (const k of ["mask", "sketch", "color"]) {
      el[k].width = state.layerW;
      el[k].height = state.layerH;
    }
    for (const node of [el.stage, el.photo, el.mask, el.sketch, el.color]) {
      node.style.width = `${state.layerW}px`;
      node.style.height = `${state.layerH}px`;
    }
    document.body.dataset.image = "loaded";
    replay();
    fit();
    const shown = scale < 1 ? `; layers at ${state.layerW}×${state.layerH}` : "";
    el.info.textContent = `${image.name} — ${image.width}×${image.height} px${shown}`;
    setStatus("Paint over the part to repair with the mask brush, then Run.");
  }

  // ------------------------------------------------------------------------------------------ history

  function currentImageAction() {
    for (let i = state.pointer - 1; i >= 0; i--) if (state.history[i].type === "image") return state.history[i];
    return null;
  }
  const currentImage = () => (currentImageAction() || { image: state.original }).image;

  function push(action) {
    for (const a of state.history.slice(state.pointer)) if (a.type === "image") URL.revokeObjectURL(a.image.url);
    state.history.length = state.pointer;
    state.history.push(action);
    state.pointer += 1;
  }

  function replay() {
    const last = currentImageAction();
    const start = last ? state.history.indexOf(last) + 1 : 0;
    showImage(currentImage());
    clearLayers();
    for (let i = start; i < state.pointer; i++) apply(state.history[i]);
    setBefore(false);
    updateButtons();
  }

  function apply(a) {
    if (a.type === "stroke") drawStroke(a, 0);
    else if (a.type === "clear") clearLayers();
    else if (a.type === "mask") {
      ctx.mask.clearRect(0, 0, state.layerW, state.layerH);
      ctx.mask.drawImage(a.canvas, 0, 0);
    }
  }

  function clearLayers() {
    for (const k of ["mask", "sketch", "color"]) ctx[k].clearRect(0, 0, state.layerW, state.layerH);
  }

  function undo() {
    if (state.busy || state.pointer === 0) return;
    state.pointer -= 1;
    replay();
  }

  function redo() {
    if (state.busy || state.pointer >= state.history.length) return;
    state.pointer += 1;
    replay();
  }

  function showImage(image) {
    if (el.photo.dataset.url !== image.url) {
      el.photo.src = image.url;
      el.photo.dataset.url = image.url;
    }
    el.photo.dataset.kind = image === state.original ? "original" : "result";
  }

  function updateButtons() {
    const has = !!state.original;
    const idle = !state.busy;
    el.undo.disabled = !has || !idle || state.pointer === 0;
    el.redo.disabled = !has || !idle || state.pointer >= state.history.length;
    el.clear.disabled = !has || !idle;
    el.maskDownload.disabled = !has;
    el.run.disabled = !has || !idle || !currentModel();
    el.compare.disabled = !has || !currentImageAction();
    el.download.disabled = !has || !currentImageAction();
  }

  // ------------------------------------------------------------------------------------------ drawing

  function drawStroke(a, from) {
    const erase = a.layer === "erase";
    for (const k of erase ? ["mask", "sketch", "color"] : [a.layer]) {
      const c = ctx[k];
      c.save();
      c.globalCompositeOperation = erase ? "destination-out" : "source-over";
      c.strokeStyle = c.fillStyle = erase ? "#000" : a.color;
      c.lineWidth = a.width;
      c.lineCap = "round";
      c.lineJoin = "round";
      const pts = a.points;
      if (from === 0 && pts.length === 1) {
        c.beginPath();
        c.arc(pts[0][0], pts[0][1], a.width / 2, 0, 2 * Math.PI);
        c.fill();
      } else {
        const start = Math.max(0, from - 1);
        c.beginPath();
        c.moveTo(pts[start][0], pts[start][1]);
        for (let i = start + 1; i < pts.length; i++) c.lineTo(pts[i][0], pts[i][1]);
        c.stroke();
      }
      c.restore();
    }
  }

  function toLayer(ev) {
    const r = el.viewport.getBoundingClientRect();
    return [(ev.clientX - r.left - state.panX) / state.zoom, (ev.clientY - r.top - state.panY) / state.zoom];
  }

  function onPointerDown(ev) {
    if (!state.original || state.pointerId !== null) return;
    const panning = state.spaceHeld || ev.button === 1;
    if (!panning && ev.button !== 0) return;
    el.viewport.setPointerCapture(ev.pointerId);
    ev.preventDefault();
    if (panning) {
      state.pointerId = ev.pointerId;
      state.pan = { x: ev.clientX, y: ev.clientY, panX: state.panX, panY: state.panY };
      el.viewport.classList.add("dragging");
      return;
    }
    if (state.busy) return showError("Wait for the running model to finish before editing.");
    setBefore(false);
    state.pointerId = ev.pointerId;
    const layer = state.tool;
    const color = layer === "mask" ? MASK_COLOR : layer === "sketch" ? SKETCH_COLOR : el.picker.value;
    state.stroke = { type: "stroke", layer, color, width: state.size / state.zoom, points: [toLayer(ev)] };
    drawStroke(state.stroke, 0);
  }

  function onPointerMove(ev) {
    moveCursor(ev);
    if (ev.pointerId !== state.pointerId) return;
    if (state.pan) {
      state.panX = state.pan.panX + ev.clientX - state.pan.x;
      state.panY = state.pan.panY + ev.clientY - state.pan.y;
      applyView();
      return;
    }
    if (!state.stroke) return;
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    for (const e of events.length ? events : [ev]) {
      const p = toLayer(e);
      const last = state.stroke.points[state.stroke.points.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) < 0.5) continue;
      state.stroke.points.push(p);
      drawStroke(state.stroke, state.stroke.points.length - 1);
    }
  }

  function onPointerUp(ev) {
    if (ev.pointerId !== state.pointerId) return;
    state.pointerId = null;
    if (state.pan) {
      state.pan = null;
      el.viewport.classList.remove("dragging");
    }
    if (state.stroke) {
      push(state.stroke);
      state.stroke = null;
      updateButtons();
    }
  }

  // ------------------------------------------------------------------------------------------ view

  function applyView() {
    el.stage.style.transform = `translate(${state.panX}px, ${state.panY}px) scale(${state.zoom})`;
    updateCursorSize();
  }

  function fit() {
    if (!state.original) return;
    const r = el.viewport.getBoundingClientRect();
    const z = Math.min((r.width - 24) / state.layerW, (r.height - 24) / state.layerH, 4);
    state.zoom = Math.max(z, 0.01);
    state.panX = (r.width - state.layerW * state.zoom) / 2;
    state.panY = (r.height - state.layerH * state.zoom) / 2;
    applyView();
  }

  function zoomAt(factor, cx, cy) {
    if (!state.original) return;
    const r = el.viewport.getBoundingClientRect();
    if (cx === undefined) { cx = r.width / 2; cy = r.height / 2; }
    const z = Math.min(32, Math.max(0.01, state.zoom * factor));
    state.panX = cx - (cx - state.panX) * (z / state.zoom);
    state.panY = cy - (cy - state.panY) * (z / state.zoom);
    state.zoom = z;
    applyView();
  }

  function moveCursor(ev) {
    const r = el.viewport.getBoundingClientRect();
    el.cursor.style.left = `${ev.clientX - r.left}px`;
    el.cursor.style.top = `${ev.clientY - r.top}px`;
    el.cursor.hidden = !state.original || state.spaceHeld;
  }

  function updateCursorSize() {
    el.cursor.style.width = el.cursor.style.height = `${state.size}px`;
  }

  // ------------------------------------------------------------------------------------------ export

  function layerImageData(k) {
    return ctx[k].getImageData(0, 0, state.layerW, state.layerH);
  }

  // mask: white where painted (alpha >= 128, as the server thresholds at 0.5), black elsewhere
  function maskCanvas() {
    const src = layerImageData("mask").data;
    const out = new ImageData(state.layerW, state.layerH);
    const d = out.data;
    let any = false;
    for (let i = 0; i < src.length; i += 4) {
      const v = src[i + 3] >= 128 ? 255 : 0;
      if (v) any = true;
      d[i] = d[i + 1] = d[i + 2] = v;
      d[i + 3] = 255;
    }
    return { canvas: canvasFrom(out), empty: !any };
  }

  // sketch and colour: the layer itself, strokes on a transparent canvas (alpha = line / painted), which the
  // server reads without guessing a polarity (facefill.guidance); null when nothing is drawn on it
  function guidanceCanvas(k) {
    const src = layerImageData(k).data;
    for (let i = 3; i < src.length; i += 4) if (src[i]) return el[k];
    return null;
  }

  function canvasFrom(imageData) {
    const c = document.createElement("canvas");
    c.width = imageData.width;
    c.height = imageData.height;
    c.getContext("2d").putImageData(imageData, 0, 0);
    return c;
  }

  const toBlob = (canvas) => new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the browser could not encode the PNG"))), "image/png"));

  function saveBlob(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  const stem = (name) => (name || "image").replace(/\.[^.]*$/, "");

  async function downloadMask() {
    if (!state.original) return;
    let { canvas } = maskCanvas();
    const { width, height } = state.original;
    if (canvas.width !== width || canvas.height !== height) {   // layers were scaled: full size, hard edges
      const big = document.createElement("canvas");
      big.width = width;
      big.height = height;
      const c = big.getContext("2d");
      c.imageSmoothingEnabled = false;
      c.drawImage(canvas, 0, 0, width, height);
      canvas = big;
    }
    saveBlob(await toBlob(canvas), `${stem(state.original.name)}-mask.png`);
  }

  async function uploadMask(file) {
    if (!file || !state.original) return;
    if (state.busy) return showError("Wait for the running model to finish.");
    let image;
    try {
      image = await loadImage(file, file.name);
    } catch (err) {
      return showError(`Could not open the mask: ${err.message}.`);
    }
    URL.revokeObjectURL(image.url);
    if (state.busy) return showError("Wait for the running model to finish.");
    const { width, height } = state.original;
    if (Math.abs(image.width / image.height - width / height) > 0.01) {
      return showError(`The mask is ${image.width}×${image.height} but the image is ${width}×${height}.`);
    }
    const tmp = document.createElement("canvas");
    tmp.width = state.layerW;
    tmp.height = state.layerH;
    const t = tmp.getContext("2d", { willReadFrequently: true });
    const bitmap = await createImageBitmap(file);
    t.drawImage(bitmap, 0, 0, state.layerW, state.layerH);
    bitmap.close();
    const data = t.getImageData(0, 0, state.layerW, state.layerH);
    const d = data.data;
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(MASK_COLOR.slice(i, i + 2), 16));
    for (let i = 0; i < d.length; i += 4) {
      const hole = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2] >= 127.5;
      d[i] = r; d[i + 1] = g; d[i + 2] = b; d[i + 3] = hole ? 255 : 0;
    }
    t.putImageData(data, 0, 0);
    const action = { type: "mask", canvas: tmp };
    push(action);
    apply(action);
    setBefore(false);
    updateButtons();
    setStatus(`Loaded the mask ${file.name}.`);
  }

  // ------------------------------------------------------------------------------------------ run

  async function run() {
    if (state.busy) return;
    if (!state.original) return showError("Open an image first.");
    const model = currentModel();
    if (!model) return showError("No model is available on this server.");
    const mask = maskCanvas();
    if (mask.empty) return showError("The mask is empty: paint over the part to repair with the mask brush first.");
    const image = currentImage();
    const original = state.original;
    const form = new FormData();
    form.append("image", image.blob, image.name);
    form.append("model", model.name);
    if (state.layerW !== image.width || state.layerH !== image.height) form.append("resize_mask", "true");
    setBusy(true, `Running ${model.name}…`);
    setStatus(`Running ${model.name} on ${image.width}×${image.height} px…`);
    const started = performance.now();
    try {
      form.append("mask", await toBlob(mask.canvas), "mask.png");
      for (const input of ["sketch", "color"]) {
        if (!model.inputs.includes(input)) continue;
        const c = guidanceCanvas(input);
        if (c) form.append(input, await toBlob(c), `${input}.png`);
      }
      let res;
      try {
        res = await fetch("/api/v1/inpaint", { method: "POST", body: form });
      } catch {
        throw new Error("the server could not be reached (is facefill serve still running?)");
      }
      if (!res.ok) {
        let message = `${res.status} ${res.statusText}`;
        try { message = (await res.json()).error || message; } catch { /* not JSON */ }
        throw new Error(message);
      }
      const blob = await res.blob();
      const name = `${stem(original.name)}-facefill.png`;
      const result = await loadImage(blob, name);
      if (state.original !== original) { URL.revokeObjectURL(result.url); return; }   // another photo now
      push({ type: "image", image: result, previous: image });
      replay();
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const warning = res.headers.get("X-Facefill-Warning");
      if (warning) setStatus(`Done with ${model.name} in ${seconds} s. Note: ${warning}.`, "warn");
      else setStatus(`Done with ${model.name} in ${seconds} s. Keep editing, toggle Before, or Download.`);
      document.body.dataset.result = String(Number(document.body.dataset.result || 0) + 1);
    } catch (err) {
      showError(`Inpainting failed: ${err.message}`);
    } finally {
      setBusy(false);
    }
  }

  function setBefore(on) {
    const act = currentImageAction();
    state.showingBefore = on && !!act;
    el.compare.setAttribute("aria-pressed", state.showingBefore ? "true" : "false");
    el.stage.classList.toggle("before", state.showingBefore);
    if (state.original) showImage(state.showingBefore ? act.previous : currentImage());
    el.compare.textContent = state.showingBefore ? "After" : "Before";
  }

  function downloadResult() {
    const act = currentImageAction();
    if (act) saveBlob(act.image.blob, act.image.name);
  }

  // ------------------------------------------------------------------------------------------ events

  for (const b of document.querySelectorAll("[data-tool]")) b.addEventListener("click", () => setTool(b.dataset.tool));
  el.size.addEventListener("input", () => setSize(Number(el.size.value)));
  el.openFile.addEventListener("change", () => { openFile(el.openFile.files[0]); el.openFile.value = ""; });
  el.maskFile.addEventListener("change", () => { uploadMask(el.maskFile.files[0]); el.maskFile.value = ""; });
  el.maskDownload.addEventListener("click", downloadMask);
  el.undo.addEventListener("click", undo);
  el.redo.addEventListener("click", redo);
  el.clear.addEventListener("click", () => {
    if (!state.original || state.busy) return;
    const action = { type: "clear" };
    push(action);
    apply(action);
    updateButtons();
  });
  el.model.addEventListener("change", onModelChange);
  el.run.addEventListener("click", run);
  el.compare.addEventListener("click", () => setBefore(!state.showingBefore));
  el.download.addEventListener("click", downloadResult);
  el.zoomIn.addEventListener("click", () => zoomAt(1.25));
  el.zoomOut.addEventListener("click", () => zoomAt(0.8));
  el.zoomFit.addEventListener("click", fit);

  el.viewport.addEventListener("pointerdown", onPointerDown);
  el.viewport.addEventListener("pointermove", onPointerMove);
  el.viewport.addEventListener("pointerup", onPointerUp);
  el.viewport.addEventListener("pointercancel", onPointerUp);
  el.viewport.addEventListener("lostpointercapture", onPointerUp);
  el.viewport.addEventListener("pointerleave", () => { el.cursor.hidden = true; });
  el.viewport.addEventListener("wheel", (ev) => {
    if (!state.original) return;
    ev.preventDefault();
    const r = el.viewport.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  window.addEventListener("resize", () => { if (state.original) applyView(); });

  // drop an image anywhere on the page
  document.addEventListener("dragover", (ev) => { ev.preventDefault(); el.viewport.classList.add("drop-target"); });
  document.addEventListener("dragleave", (ev) => { if (!ev.relatedTarget) el.viewport.classList.remove("drop-target"); });
  document.addEventListener("drop", (ev) => {
    ev.preventDefault();
    el.viewport.classList.remove("drop-target");
    const file = ev.dataTransfer && ev.dataTransfer.files[0];
    if (file) openFile(file);
  });

  const typing = (t) => t && (t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "range" && t.type !== "color"));

  document.addEventListener("keydown", (ev) => {
    const mod = ev.ctrlKey || ev.metaKey;
    const key = ev.key.toLowerCase();
    if (mod && key === "z") { ev.preventDefault(); if (ev.shiftKey) redo(); else undo(); return; }
    if (mod && key === "y") { ev.preventDefault(); redo(); return; }
    if (mod && key === "enter") { ev.preventDefault(); run(); return; }
    if (mod || ev.altKey || typing(ev.target)) return;
    if (ev.key === " ") {
      ev.preventDefault();
      if (!state.spaceHeld) { state.spaceHeld = true; el.viewport.classList.add("panning"); el.cursor.hidden = true; }
      return;
    }
    const actions = {
      "[": () => setSize(state.size > 10 ? state.size / 1.2 : state.size - 1),
      "]": () => setSize(state.size >= 10 ? state.size * 1.2 : state.size + 1),
      b: () => setTool("mask"), e: () => setTool("erase"),
      s: () => takes("sketch") && setTool("sketch"), c: () => takes("color") && setTool("color"),
      "+": () => zoomAt(1.25), "=": () => zoomAt(1.25), "-": () => zoomAt(0.8), 0: fit,
    };
    if (actions[key]) { ev.preventDefault(); actions[key](); }
  });
  document.addEventListener("keyup", (ev) => {
    if (ev.key === " ") { state.spaceHeld = false; el.viewport.classList.remove("panning"); }
  });
  window.addEventListener("blur", () => { state.spaceHeld = false; el.viewport.classList.remove("panning"); });

  setTool("mask");
  setSize(30);
  updateButtons();
  loadModels();
  // for tests and debugging in the console
  window.facefillEditor = { state, openFile, run, undo, redo, fit };
})();
