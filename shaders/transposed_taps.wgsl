// The taps of a transposed conv that land on an output position (col2im.wgsl, col2vol.wgsl
// and transposed_border.wgsl; joined in front of them). Output row oy receives tap i from input
// row iy when oy + pt − i·dh = iy·sh; the taps that land are i0, i0 + step, … with
// step = sh / gcd(sh, dh) (the congruence i·dh ≡ oy + pt (mod sh) repeats with that period),
// and from one to the next the input row falls by step·dh / sh = dh / gcd(sh, dh). Columns
// alike.

// step = s / gcd(s, d), by Euclid's loop (a few turns), where the host does not pass it.
fn tap_step(s: u32, d: u32) -> u32 {
    var a = s;
    var b = d % s;
    for (var t = 0u; t < 64u && b != 0u; t++) {
        let r = a % b;
        a = b;
        b = r;
    }
    return s / a;
}

// The first tap of `offset` (oy + pt) that lands on an input row: i < step with
// i·d ≡ offset (mod s); `none` (the kernel's size: no tap) when none does, as then no later
// tap does either.
fn first_tap(offset: u32, s: u32, d: u32, step: u32, none: u32) -> u32 {
    let want = offset % s;
    for (var i = 0u; i < step; i++) {
        if ((i * d) % s == want) {
            return i;
        }
    }
    return none;
}
