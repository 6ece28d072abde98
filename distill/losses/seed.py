"""The SEED objective (Fang et al., ICLR 2021, Sec. 3.2, Eq. 2-4)."""

import torch
import torch.nn.functional as F

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
        teacher_emb = at_least_float32(teacher_emb.detach())
        queue = queue.detach().to(student_emb.dtype)
        # Similarities to D+ = [own teacher embedding; queue]: N x (1+K)
        student_logits = torch.cat([(student_emb * teacher_emb).sum(dim=1, keepdim=True), student_emb @ queue.T], dim=1)
        teacher_logits = torch.cat([(teacher_emb * teacher_emb).sum(dim=1, keepdim=True), teacher_emb @ queue.T], dim=1)
        teacher_prob = F.softmax(teacher_logits / tau_teacher, dim=1)
        student_log_prob = F.log_softmax(student_logits / tau_student, dim=1)
        return -(teacher_prob * student_log_prob).sum(dim=1).mean()
