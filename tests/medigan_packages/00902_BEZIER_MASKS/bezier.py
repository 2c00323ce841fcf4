import numpy as np


def closed_curve_mask(size, num_points, rng):
    """A filled closed curve through ``num_points`` random points around the centre (0/1 uint8)."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, num_points))
    radii = rng.uniform(0.2, 0.45, num_points) * size
    centre = size / 2 + rng.uniform(-0.1, 0.1, 2) * size
    t = np.linspace(0, 1, 24)[:, None]
    points = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1)
    curve = []
    for k in range(num_points):  # quadratic Bezier pieces through the midpoints
        p0 = (points[k - 1] + points[k]) / 2
        p2 = (points[k] + points[(k + 1) % num_points]) / 2
        curve.append((1 - t) ** 2 * p0 + 2 * (1 - t) * t * points[k] + t ** 2 * p2)
    poly = np.concatenate(curve)
    yy, xx = np.mgrid[0:size, 0:size]
    inside = np.zeros((size, size), bool)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for a, b, c, d in zip(x0, y0, x1, y1):  # even-odd rule
        crosses = ((b > yy) != (d > yy)) & (xx < (c - a) * (yy - b) / (d - b + 1e-12) + a)
        inside ^= crosses
    return inside.astype(np.uint8)
