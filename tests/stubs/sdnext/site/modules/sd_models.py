"""Stand-in for SD.Next's modules/sd_models.py: set_diffuser_pipe switches the task by building a NEW
pipeline object of the task's class from the same components (AutoPipelineFor*.from_pipe), copies
sd_checkpoint_info and re-applies the prompt-encode hijack."""

import enum

from modules import sd_hijack_te


class DiffusersTaskType(enum.Enum):
    TEXT_2_IMAGE = 1
    IMAGE_2_IMAGE = 2
    INPAINTING = 3


TASK_CLASSES = {}   # task -> pipeline class, registered by the loader (diffusers' AUTO_*_PIPELINES_MAPPING)


def get_diffusers_task(pipe):
    for task, cls in TASK_CLASSES.items():
        if type(pipe) is cls:
            return task
    return DiffusersTaskType.TEXT_2_IMAGE


def set_diffuser_pipe(pipe, new_pipe_type):
    if pipe is None or get_diffusers_task(pipe) == new_pipe_type or new_pipe_type not in TASK_CLASSES:
        return pipe
    if type(pipe) not in TASK_CLASSES.values():   # another model family: no switch
        return pipe
    new_pipe = TASK_CLASSES[new_pipe_type](**pipe.components)
    new_pipe.sd_checkpoint_info = getattr(pipe, "sd_checkpoint_info", None)
    if hasattr(pipe, "orig_encode_prompt"):
        sd_hijack_te.init_hijack(new_pipe)
    return new_pipe
