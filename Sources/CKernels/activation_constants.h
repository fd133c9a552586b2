// Constants of the activations, shared by the AVX-512 (activations.c) and AVX2 (activations_avx2.c)
// versions: the erf rational approximation x·P(x²)/Q(x²) on [-4, 4] (Eigen's and XLA's for float),
// the tanh GELU's sqrt(2/pi) and cubic coefficient, and e^x as 2^n · e^r (Cephes' expf: the clamp
// range, ln 2 split in two for the reduction r = x − n ln 2, and the degree-5 polynomial of e^r).
#ifndef ERUDIFF_ACTIVATION_CONSTANTS_H
#define ERUDIFF_ACTIVATION_CONSTANTS_H

#define A13 -2.72614225801306e-10f
#define A11 2.77068142495902e-08f
#define A9 -2.10102402082508e-06f
#define A7 -5.69250639462346e-05f
#define A5 -7.34990630326855e-04f
#define A3 -2.95459980854025e-03f
#define A1 -1.60960333262415e-02f
#define B8 -1.45660718464996e-05f
#define B6 -2.13374055278905e-04f
#define B4 -1.68282697438203e-03f
#define B2 -7.37332916720468e-03f
#define B0 -1.42647390514189e-02f
#define INV_SQRT2 0.7071067811865476f
#define K0 0.7978845608028654f
#define K1 0.044715f
#define EXP_LO -87.33654f
#define EXP_HI 88.72283f
#define LOG2E 1.442695040888963f
#define LN2_HI 0.693359375f
#define LN2_LO 2.12194440e-4f
#define EXP_P5 1.9875691500e-4f
#define EXP_P4 1.3981999507e-3f
#define EXP_P3 8.3334519073e-3f
#define EXP_P2 4.1665795894e-2f
#define EXP_P1 1.6666665459e-1f
#define EXP_P0 5.0000001201e-1f

#endif
