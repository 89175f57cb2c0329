//go:build amd64 && !purego

#include "textflag.h"

// AVX2 + FMA kernels; see kernels_amd64.go for their contracts. Lengths
// called k are element counts, multiples of 8 unless said otherwise.

// func gatherDotAxpyAVX2(fixed *float32, k int, idx *int32, n int, ca, cb, x, y *float32)
TEXT ·gatherDotAxpyAVX2(SB), NOSPLIT, $0-64
	MOVQ fixed+0(FP), SI
	MOVQ k+8(FP), R13
	MOVQ idx+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ ca+32(FP), R8
	MOVQ cb+40(FP), R9
	MOVQ x+48(FP), DI
	MOVQ y+56(FP), R10
	SHLQ $2, R13            // row bytes
	MOVQ R13, R14
	ANDQ $-64, R14          // bytes covered by 16-float steps
	TESTQ CX, CX
	JEQ gda_done

gda_row:
	MOVLQSX (BX), AX
	IMULQ R13, AX
	LEAQ (SI)(AX*1), R11    // this row's factor
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ R12, R12

gda_dot16:
	CMPQ R12, R14
	JGE gda_dot8
	VMOVUPS (R11)(R12*1), Y2
	VMOVUPS 32(R11)(R12*1), Y3
	VFMADD231PS (DI)(R12*1), Y2, Y0
	VFMADD231PS 32(DI)(R12*1), Y3, Y1
	ADDQ $64, R12
	JMP gda_dot16

gda_dot8:
	CMPQ R12, R13
	JGE gda_sum
	VMOVUPS (R11)(R12*1), Y2
	VFMADD231PS (DI)(R12*1), Y2, Y0
	ADDQ $32, R12
	JMP gda_dot8

gda_sum:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS (R8), X1
	VFMADD231SS (R9), X0, X1 // coefficient = ca + cb·dot
	VBROADCASTSS X1, Y1
	XORQ R12, R12

gda_axpy:
	CMPQ R12, R13
	JGE gda_next
	VMOVUPS (R10)(R12*1), Y2
	VFMADD231PS (R11)(R12*1), Y1, Y2
	VMOVUPS Y2, (R10)(R12*1)
	ADDQ $32, R12
	JMP gda_axpy

gda_next:
	ADDQ $4, BX
	ADDQ $4, R8
	ADDQ $4, R9
	DECQ CX
	JNE gda_row

gda_done:
	VZEROUPPER
	RET

// func symvAVX2(gm *float32, k int, x, y *float32)
// y = g·x for a symmetric row-major k×k g, computed as Σ_b x[b]·g[b,:].
TEXT ·symvAVX2(SB), NOSPLIT, $0-32
	MOVQ gm+0(FP), SI
	MOVQ k+8(FP), DX
	MOVQ x+16(FP), DI
	MOVQ y+24(FP), R10
	MOVQ DX, R13
	SHLQ $2, R13            // row bytes
	XORQ R12, R12           // column byte offset of the block

sv_block32:
	LEAQ 128(R12), AX
	CMPQ AX, R13
	JGT sv_block8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ (SI)(R12*1), R11   // g[0, block]
	XORQ BX, BX             // row index b
sv_row32:
	VBROADCASTSS (DI)(BX*4), Y4
	VFMADD231PS (R11), Y4, Y0
	VFMADD231PS 32(R11), Y4, Y1
	VFMADD231PS 64(R11), Y4, Y2
	VFMADD231PS 96(R11), Y4, Y3
	ADDQ R13, R11
	INCQ BX
	CMPQ BX, DX
	JLT sv_row32
	VMOVUPS Y0, (R10)(R12*1)
	VMOVUPS Y1, 32(R10)(R12*1)
	VMOVUPS Y2, 64(R10)(R12*1)
	VMOVUPS Y3, 96(R10)(R12*1)
	ADDQ $128, R12
	JMP sv_block32

sv_block8:
	CMPQ R12, R13
	JGE sv_done
	VXORPS Y0, Y0, Y0
	LEAQ (SI)(R12*1), R11
	XORQ BX, BX
sv_row8:
	VBROADCASTSS (DI)(BX*4), Y4
	VFMADD231PS (R11), Y4, Y0
	ADDQ R13, R11
	INCQ BX
	CMPQ BX, DX
	JLT sv_row8
	VMOVUPS Y0, (R10)(R12*1)
	ADDQ $32, R12
	JMP sv_block8

sv_done:
	VZEROUPPER
	RET

// func dotAVX2(a, b *float32, k int) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ k+16(FP), R13
	SHLQ $2, R13
	MOVQ R13, R14
	ANDQ $-64, R14
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ R12, R12
dot_16:
	CMPQ R12, R14
	JGE dot_8
	VMOVUPS (SI)(R12*1), Y2
	VMOVUPS 32(SI)(R12*1), Y3
	VFMADD231PS (DI)(R12*1), Y2, Y0
	VFMADD231PS 32(DI)(R12*1), Y3, Y1
	ADDQ $64, R12
	JMP dot_16
dot_8:
	CMPQ R12, R13
	JGE dot_sum
	VMOVUPS (SI)(R12*1), Y2
	VFMADD231PS (DI)(R12*1), Y2, Y0
	ADDQ $32, R12
	JMP dot_8
dot_sum:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyAVX2(a float32, x, y *float32, k int)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS a+0(FP), Y1
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ k+24(FP), R13
	SHLQ $2, R13
	XORQ R12, R12
axpy_8:
	CMPQ R12, R13
	JGE axpy_done
	VMOVUPS (DI)(R12*1), Y2
	VFMADD231PS (SI)(R12*1), Y1, Y2
	VMOVUPS Y2, (DI)(R12*1)
	ADDQ $32, R12
	JMP axpy_8
axpy_done:
	VZEROUPPER
	RET

// func score4x16AVX2(k int, u0, u1, u2, u3, panel, out *float32, ldo int)
// out[r*ldo+j] = Σ_t u_r[t]·panel[t*16+j] for r < 4, j < 16 (any k ≥ 1).
TEXT ·score4x16AVX2(SB), NOSPLIT, $0-64
	MOVQ k+0(FP), CX
	MOVQ u0+8(FP), R8
	MOVQ u1+16(FP), R9
	MOVQ u2+24(FP), R10
	MOVQ u3+32(FP), R11
	MOVQ panel+40(FP), SI
	MOVQ out+48(FP), DI
	MOVQ ldo+56(FP), DX
	SHLQ $2, DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ AX, AX
sc_loop:
	VMOVUPS (SI), Y8
	VMOVUPS 32(SI), Y9
	VBROADCASTSS (R8)(AX*1), Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	VBROADCASTSS (R9)(AX*1), Y11
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y9, Y11, Y3
	VBROADCASTSS (R10)(AX*1), Y12
	VFMADD231PS Y8, Y12, Y4
	VFMADD231PS Y9, Y12, Y5
	VBROADCASTSS (R11)(AX*1), Y13
	VFMADD231PS Y8, Y13, Y6
	VFMADD231PS Y9, Y13, Y7
	ADDQ $64, SI
	ADDQ $4, AX
	DECQ CX
	JNE sc_loop
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ DX, DI
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	ADDQ DX, DI
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, 32(DI)
	ADDQ DX, DI
	VMOVUPS Y6, (DI)
	VMOVUPS Y7, 32(DI)
	VZEROUPPER
	RET

// func gatherDotAxpy4AVX2(fixed *float32, k int, idx *int32, n int, ca, cb, x, y *float32)
// gatherDotAxpyAVX2 four interactions at a time: the four dot products run
// as independent chains (two accumulators each) and y is loaded and stored
// once per four rows. n must be a multiple of 4, k of 16.
TEXT ·gatherDotAxpy4AVX2(SB), NOSPLIT, $0-64
	MOVQ fixed+0(FP), SI
	MOVQ k+8(FP), R13
	MOVQ idx+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ ca+32(FP), R8
	MOVQ cb+40(FP), R9
	MOVQ x+48(FP), DI
	MOVQ y+56(FP), R10
	SHLQ $2, R13            // row bytes
	SHRQ $2, CX             // groups of four
	TESTQ CX, CX
	JEQ g4_done

g4_group:
	MOVLQSX (BX), AX
	IMULQ R13, AX
	ADDQ SI, AX             // row 0
	MOVLQSX 4(BX), DX
	IMULQ R13, DX
	ADDQ SI, DX             // row 1
	MOVLQSX 8(BX), R11
	IMULQ R13, R11
	ADDQ SI, R11            // row 2
	MOVLQSX 12(BX), R12
	IMULQ R13, R12
	ADDQ SI, R12            // row 3
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ R14, R14

g4_dot:
	VMOVUPS (DI)(R14*1), Y8
	VMOVUPS 32(DI)(R14*1), Y9
	VFMADD231PS (AX)(R14*1), Y8, Y0
	VFMADD231PS 32(AX)(R14*1), Y9, Y1
	VFMADD231PS (DX)(R14*1), Y8, Y2
	VFMADD231PS 32(DX)(R14*1), Y9, Y3
	VFMADD231PS (R11)(R14*1), Y8, Y4
	VFMADD231PS 32(R11)(R14*1), Y9, Y5
	VFMADD231PS (R12)(R14*1), Y8, Y6
	VFMADD231PS 32(R12)(R14*1), Y9, Y7
	ADDQ $64, R14
	CMPQ R14, R13
	JLT g4_dot

	// Reduce to X0 = [d0, d1, d2, d3].
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y5, Y4, Y4
	VADDPS Y7, Y6, Y6
	VHADDPS Y2, Y0, Y0
	VHADDPS Y6, Y4, Y4
	VHADDPS Y4, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	// Coefficients ca + cb·d, one per row, broadcast.
	VMOVUPS (R8), X1
	VFMADD231PS (R9), X0, X1
	VBROADCASTSS X1, Y10
	VSHUFPS $0x55, X1, X1, X11
	VBROADCASTSS X11, Y11
	VSHUFPS $0xAA, X1, X1, X12
	VBROADCASTSS X12, Y12
	VSHUFPS $0xFF, X1, X1, X13
	VBROADCASTSS X13, Y13
	XORQ R14, R14

g4_axpy:
	VMOVUPS (R10)(R14*1), Y0
	VMOVUPS 32(R10)(R14*1), Y1
	VFMADD231PS (AX)(R14*1), Y10, Y0
	VFMADD231PS 32(AX)(R14*1), Y10, Y1
	VFMADD231PS (DX)(R14*1), Y11, Y0
	VFMADD231PS 32(DX)(R14*1), Y11, Y1
	VFMADD231PS (R11)(R14*1), Y12, Y0
	VFMADD231PS 32(R11)(R14*1), Y12, Y1
	VFMADD231PS (R12)(R14*1), Y13, Y0
	VFMADD231PS 32(R12)(R14*1), Y13, Y1
	VMOVUPS Y0, (R10)(R14*1)
	VMOVUPS Y1, 32(R10)(R14*1)
	ADDQ $64, R14
	CMPQ R14, R13
	JLT g4_axpy

	ADDQ $16, BX
	ADDQ $16, R8
	ADDQ $16, R9
	DECQ CX
	JNE g4_group

g4_done:
	VZEROUPPER
	RET

// func gramRank4AVX2(y *float64, k int, gm *float64)
// gm += Σ_{r<4} y_r y_rᵀ for the four float64 rows y_r = y[r*k:(r+1)*k],
// each row a of gm updated from column a&^3 on (the upper triangle plus a
// few entries the caller mirrors over). k must be a positive multiple of 4.
TEXT ·gramRank4AVX2(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), SI
	MOVQ k+8(FP), DX
	MOVQ gm+16(FP), DI
	MOVQ DX, R13
	SHLQ $3, R13            // row bytes
	LEAQ (SI)(R13*1), R8    // y1
	LEAQ (R8)(R13*1), R9    // y2
	LEAQ (R9)(R13*1), R10   // y3
	MOVQ DI, R11            // gm row a
	XORQ AX, AX             // a

gr_row:
	VBROADCASTSD (SI)(AX*8), Y0
	VBROADCASTSD (R8)(AX*8), Y1
	VBROADCASTSD (R9)(AX*8), Y2
	VBROADCASTSD (R10)(AX*8), Y3
	MOVQ AX, BX
	ANDQ $-4, BX

gr_col:
	VMULPD (SI)(BX*8), Y0, Y5
	VFMADD231PD (R8)(BX*8), Y1, Y5
	VMOVUPD (R11)(BX*8), Y4
	VFMADD231PD (R9)(BX*8), Y2, Y4
	VFMADD231PD (R10)(BX*8), Y3, Y4
	VADDPD Y5, Y4, Y4
	VMOVUPD Y4, (R11)(BX*8)
	ADDQ $4, BX
	CMPQ BX, DX
	JLT gr_col

	ADDQ R13, R11
	INCQ AX
	CMPQ AX, DX
	JLT gr_row
	VZEROUPPER
	RET

// func firstAboveAVX2(p *float32, n int, thr float32) int
// The first i < n with p[i] > thr (false for NaN), else n; n a multiple
// of 8.
TEXT ·firstAboveAVX2(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS thr+16(FP), Y1
	XORQ AX, AX

fa_loop:
	CMPQ AX, CX
	JGE fa_none
	VMOVUPS (SI)(AX*4), Y0
	VCMPPS $0x1E, Y1, Y0, Y2
	VMOVMSKPS Y2, DX
	TESTL DX, DX
	JNE fa_found
	ADDQ $8, AX
	JMP fa_loop

fa_found:
	BSFL DX, DX
	ADDQ DX, AX
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET

fa_none:
	MOVQ CX, ret+24(FP)
	VZEROUPPER
	RET

// func fmaPeakAVX2(n int)
// n rounds of 12 independent 8-wide FMAs (192 float32 flops per round):
// BenchmarkPeak uses it to measure the core's FLOP/s ceiling.
TEXT ·fmaPeakAVX2(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
fp2_loop:
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y1
	VFMADD231PS Y12, Y13, Y2
	VFMADD231PS Y12, Y13, Y3
	VFMADD231PS Y12, Y13, Y4
	VFMADD231PS Y12, Y13, Y5
	VFMADD231PS Y12, Y13, Y6
	VFMADD231PS Y12, Y13, Y7
	VFMADD231PS Y12, Y13, Y8
	VFMADD231PS Y12, Y13, Y9
	VFMADD231PS Y12, Y13, Y10
	VFMADD231PS Y12, Y13, Y11
	DECQ CX
	JNE fp2_loop
	VZEROUPPER
	RET

// func fmaPeakAVX512(n int)
// fmaPeakAVX2 with 16-wide FMAs (384 flops per round).
TEXT ·fmaPeakAVX512(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
fp5_loop:
	VFMADD231PS Z12, Z13, Z0
	VFMADD231PS Z12, Z13, Z1
	VFMADD231PS Z12, Z13, Z2
	VFMADD231PS Z12, Z13, Z3
	VFMADD231PS Z12, Z13, Z4
	VFMADD231PS Z12, Z13, Z5
	VFMADD231PS Z12, Z13, Z6
	VFMADD231PS Z12, Z13, Z7
	VFMADD231PS Z12, Z13, Z8
	VFMADD231PS Z12, Z13, Z9
	VFMADD231PS Z12, Z13, Z10
	VFMADD231PS Z12, Z13, Z11
	DECQ CX
	JNE fp5_loop
	VZEROUPPER
	RET

// func score4x32AVX512(k int, u0, u1, u2, u3, panel, out *float32, ldo int)
// score4x16AVX2 with 16-wide registers over panels of 32 items
// (panel[t*32+j] is item j's element t).
TEXT ·score4x32AVX512(SB), NOSPLIT, $0-64
	MOVQ k+0(FP), CX
	MOVQ u0+8(FP), R8
	MOVQ u1+16(FP), R9
	MOVQ u2+24(FP), R10
	MOVQ u3+32(FP), R11
	MOVQ panel+40(FP), SI
	MOVQ out+48(FP), DI
	MOVQ ldo+56(FP), DX
	SHLQ $2, DX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	XORQ AX, AX
s5_loop:
	VMOVUPS (SI), Z8
	VMOVUPS 64(SI), Z9
	VBROADCASTSS (R8)(AX*1), Z10
	VFMADD231PS Z8, Z10, Z0
	VFMADD231PS Z9, Z10, Z1
	VBROADCASTSS (R9)(AX*1), Z11
	VFMADD231PS Z8, Z11, Z2
	VFMADD231PS Z9, Z11, Z3
	VBROADCASTSS (R10)(AX*1), Z12
	VFMADD231PS Z8, Z12, Z4
	VFMADD231PS Z9, Z12, Z5
	VBROADCASTSS (R11)(AX*1), Z13
	VFMADD231PS Z8, Z13, Z6
	VFMADD231PS Z9, Z13, Z7
	ADDQ $128, SI
	ADDQ $4, AX
	DECQ CX
	JNE s5_loop
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ DX, DI
	VMOVUPS Z2, (DI)
	VMOVUPS Z3, 64(DI)
	ADDQ DX, DI
	VMOVUPS Z4, (DI)
	VMOVUPS Z5, 64(DI)
	ADDQ DX, DI
	VMOVUPS Z6, (DI)
	VMOVUPS Z7, 64(DI)
	VZEROUPPER
	RET
