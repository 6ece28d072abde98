"""The SEED objective (Fang et al., ICLR 2021, Sec. 3.2, Eq. 2-4)."""

import torch

from ._precision import at_least_float32


def seed_loss(
    student_emb: torch.Tensor,
    teacher_emb: torch.Tensor,
    queue: torch.Tensor,
    tau_student: float = 0.2,
    tau_teacher: float = 0.01,
) -> torch.Tensor:
    """Cross-entropy between the teacher's and the student's similarity distributions.

    For sample i, the anchors are D+ = [z_T_i; D]: the teacher's own embedding of
    the image followed by the K queued teacher embeddings. With
        p_T(j) = softmax_j(z_T_i . d_j / tau_T),   p_S(j) = softmax_j(z_S_i . d_j / tau_S),
    the loss is  -1/N sum_i sum_j p_T(j) log p_S(j).
    As tau_T -> 0, p_T becomes one-hot on j = 0 (z_T . z_T = 1 is the largest
    similarity) and the loss is InfoNCE with the positive at index 0.

    The computation is :class:`_SeedCrossEntropy` (one matmul over the queue for both
    networks, the gradient formed in the forward pass), so the caller may overwrite
    ``queue`` as soon as this returns: nothing here keeps a reference to it.

    Args:
        student_emb: N x C, L2-normalised student embeddings (carry the gradient).
        teacher_emb: N x C, L2-normalised teacher embeddings (no gradient needed).
        queue: K x C, L2-normalised teacher embeddings of earlier batches.
        tau_student, tau_teacher: temperatures tau_S and tau_T (> 0).

    Returns:
        The scalar loss, mean over the batch.
    """
    if tau_student <= 0 or tau_teacher <= 0:
        raise ValueError(f"temperatures must be > 0, got tau_student={tau_student}, tau_teacher={tau_teacher}")
    if student_emb.shape != teacher_emb.shape or student_emb.shape[1] != queue.shape[1]:
        raise ValueError(
            f"embedding shapes disagree: student {tuple(student_emb.shape)}, "
            f"teacher {tuple(teacher_emb.shape)}, queue {tuple(queue.shape)} (expected N x C, N x C, K x C)"
        )
    # Logits in (at least) float32, outside autocast: with tau_T = 1e-4 a similarity
    # error of 1e-3 (fp16) would move the teacher's logits by 10.
    with torch.autocast(student_emb.device.type, enabled=False):
        student_emb = at_least_float32(student_emb)
        teacher_emb = at_least_float32(teacher_emb.detach()).to(student_emb.dtype)
        queue = queue.detach().to(student_emb.dtype)
        return _SeedCrossEntropy.apply(student_emb, teacher_emb, queue, tau_student, tau_teacher)


class _SeedCrossEntropy(torch.autograd.Function):
    """The loss of :func:`seed_loss` and its gradient for the student, in one pass.

    Why not plain autograd: at the paper's K = 65,536 the objective is memory-bound. Autograd
    keeps the K x C queue (so the caller had to copy it, 32 MB, before the queue update) and
    several N x (1+K) tensors for the backward pass. Here the queue is read by one matmul for
    both networks, with the temperatures folded into the embeddings, written straight into the
    logits over D+ (column 0 is the positive, the teacher's own embedding), and once more for
    the gradient. Only the N x C gradient is kept for the backward pass.

    With s_ij, t_ij the student's and teacher's logits over D+ and d_0 = z_T_i:
        loss = -1/N sum_i sum_j p_T(j) log p_S(j),
        d loss / d z_S_i = 1/(N tau_S) sum_j (p_S(j) - p_T(j)) d_j.
    The softmaxes use torch's fused kernels: an elementwise ``exp`` of the teacher's logits,
    which reach -200 at tau_T = 0.01, takes a slow path for underflowing inputs (measured 10x).
    """

    @staticmethod
    def forward(ctx, student_emb, teacher_emb, queue, tau_student, tau_teacher):
        n = student_emb.shape[0]
        # One matmul for both networks: rows 0..N-1 are z_S / tau_S, rows N..2N-1 are z_T / tau_T.
        scaled = torch.cat([student_emb / tau_student, teacher_emb / tau_teacher])  # 2N x C
        logits = scaled.new_empty(2 * n, 1 + queue.shape[0])  # 2N x (1+K): [positive | queue]
        torch.mm(scaled, queue.T, out=logits[:, 1:])
        logits[:, 0] = (scaled * teacher_emb.repeat(2, 1)).sum(dim=1)
        teacher_prob = torch.softmax(logits[n:], dim=1)  # N x (1+K)
        student_log_prob = torch.log_softmax(logits[:n], dim=1)  # N x (1+K)
        loss = -torch.linalg.vecdot(teacher_prob, student_log_prob).mean()
        if ctx.needs_input_grad[0]:
            prob_diff = student_log_prob.exp_().sub_(teacher_prob)  # N x (1+K): p_S - p_T
            grad = torch.addmm(prob_diff[:, :1] * teacher_emb, prob_diff[:, 1:], queue)  # N x C
            ctx.save_for_backward(grad.mul_(1.0 / (n * tau_student)))
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        (grad,) = ctx.saved_tensors
        return grad * grad_loss, None, None, None, None
