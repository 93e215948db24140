/**
 * `skimage.data.astronaut()` (one face) as a 1280×720 JPEG: the picture the WebRTC tests and bench
 * stream. Made once with the ML venv's scikit-image and Pillow, cached under `tests/.fixtures/`.
 * @module
 */
const FIXTURES = new URL("./.fixtures/", import.meta.url);
const PYTHON = new URL("../python-ml/.venv/bin/python", import.meta.url);

const SCRIPT = `
import sys
from PIL import Image
from skimage import data
face = Image.fromarray(data.astronaut()).resize((720, 720))
canvas = Image.new("RGB", (1280, 720), (32, 32, 40))
canvas.paste(face, (280, 0))
canvas.save(sys.argv[1], "JPEG", quality=85)
`;

/** Path of the 1280×720 astronaut JPEG, made on first use. */
export async function astronautJpeg720p(): Promise<string> {
  const path = new URL("astronaut_720p.jpg", FIXTURES).pathname;
  try {
    await Deno.stat(path);
    return path;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await Deno.mkdir(FIXTURES, { recursive: true });
  const partial = `${path}.partial`;
  const { code, stderr } = await new Deno.Command(PYTHON.pathname, { args: ["-c", SCRIPT, partial], stderr: "piped" })
    .output();
  if (code !== 0) throw new Error(`making ${path} failed: ${new TextDecoder().decode(stderr)}`);
  await Deno.rename(partial, path);
  return path;
}
