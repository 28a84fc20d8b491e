/*
 * nbody: the n-body simulation of the Computer Language Benchmarks Game
 * (five planets, double precision), as a WASI command: `nbody N` advances
 * the system N steps and prints the energy before and after. CPU-bound and
 * loop-heavy, with no I/O in between: what `wasmpool run` is measured
 * against `wazero run` with.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define PI 3.141592653589793
#define SOLAR_MASS (4 * PI * PI)
#define DAYS_PER_YEAR 365.24

struct planet {
	double x, y, z, vx, vy, vz, mass;
};

static struct planet bodies[] = {
	{0, 0, 0, 0, 0, 0, SOLAR_MASS},
	{4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
	 1.66007664274403694e-03 * DAYS_PER_YEAR, 7.69901118419740425e-03 * DAYS_PER_YEAR,
	 -6.90460016972063023e-05 * DAYS_PER_YEAR, 9.54791938424326609e-04 * SOLAR_MASS},
	{8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
	 -2.76742510726862411e-03 * DAYS_PER_YEAR, 4.99852801234917238e-03 * DAYS_PER_YEAR,
	 2.30417297573763929e-05 * DAYS_PER_YEAR, 2.85885980666130812e-04 * SOLAR_MASS},
	{1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
	 2.96460137564761618e-03 * DAYS_PER_YEAR, 2.37847173959480950e-03 * DAYS_PER_YEAR,
	 -2.96589568540237556e-05 * DAYS_PER_YEAR, 4.36624404335156298e-05 * SOLAR_MASS},
	{1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
	 2.68067772490389322e-03 * DAYS_PER_YEAR, 1.62824170038242295e-03 * DAYS_PER_YEAR,
	 -9.51592254519715870e-05 * DAYS_PER_YEAR, 5.15138902046611451e-05 * SOLAR_MASS},
};

#define N (sizeof bodies / sizeof bodies[0])

static void advance(double dt) {
	for (unsigned i = 0; i < N; i++) {
		struct planet *b = &bodies[i];
		for (unsigned j = i + 1; j < N; j++) {
			struct planet *b2 = &bodies[j];
			double dx = b->x - b2->x, dy = b->y - b2->y, dz = b->z - b2->z;
			double d2 = dx * dx + dy * dy + dz * dz;
			double mag = dt / (d2 * sqrt(d2));
			b->vx -= dx * b2->mass * mag;
			b->vy -= dy * b2->mass * mag;
			b->vz -= dz * b2->mass * mag;
			b2->vx += dx * b->mass * mag;
			b2->vy += dy * b->mass * mag;
			b2->vz += dz * b->mass * mag;
		}
	}
	for (unsigned i = 0; i < N; i++) {
		struct planet *b = &bodies[i];
		b->x += dt * b->vx;
		b->y += dt * b->vy;
		b->z += dt * b->vz;
	}
}

static double energy(void) {
	double e = 0;
	for (unsigned i = 0; i < N; i++) {
		struct planet *b = &bodies[i];
		e += 0.5 * b->mass * (b->vx * b->vx + b->vy * b->vy + b->vz * b->vz);
		for (unsigned j = i + 1; j < N; j++) {
			struct planet *b2 = &bodies[j];
			double dx = b->x - b2->x, dy = b->y - b2->y, dz = b->z - b2->z;
			e -= (b->mass * b2->mass) / sqrt(dx * dx + dy * dy + dz * dz);
		}
	}
	return e;
}

static void offset_momentum(void) {
	double px = 0, py = 0, pz = 0;
	for (unsigned i = 0; i < N; i++) {
		px += bodies[i].vx * bodies[i].mass;
		py += bodies[i].vy * bodies[i].mass;
		pz += bodies[i].vz * bodies[i].mass;
	}
	bodies[0].vx = -px / SOLAR_MASS;
	bodies[0].vy = -py / SOLAR_MASS;
	bodies[0].vz = -pz / SOLAR_MASS;
}

int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 1000;
	offset_momentum();
	printf("%.9f\n", energy());
	for (long i = 0; i < n; i++) advance(0.01);
	printf("%.9f\n", energy());
	return 0;
}
