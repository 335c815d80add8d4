#include "framework/serialize/hdf5.h"

#include <hdf5.h>

#include <filesystem>

#include "framework/error.h"

namespace neurn {

namespace {

struct Visit {
  std::string file;
  std::vector<std::pair<std::string, Tensor>> out;
  std::string error;
};

// Closes an HDF5 handle when it leaves scope.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

herr_t visit_object(hid_t root, const char* name, const H5O_info_t* info, void* data) {
  auto* v = static_cast<Visit*>(data);
  if (info->type != H5O_TYPE_DATASET) return 0;
  Handle ds{H5Dopen2(root, name, H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) {
    v->error = std::string("cannot open dataset '") + name + "'";
    return -1;
  }
  Handle type{H5Dget_type(ds.id), H5Tclose};
  H5T_class_t cls = H5Tget_class(type.id);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) return 0;  // strings and compounds are no weights
  Handle space{H5Dget_space(ds.id), H5Sclose};
  int rank = H5Sget_simple_extent_ndims(space.id);
  if (rank < 0) {
    v->error = std::string("dataset '") + name + "' has no simple shape";
    return -1;
  }
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  Shape shape(dims.begin(), dims.end());
  Tensor t = Tensor::empty(shape, {DType::Float32});
  if (t.numel() > 0 && H5Dread(ds.id, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data<float>()) < 0) {
    v->error = std::string("cannot read dataset '") + name + "' as float32";
    return -1;
  }
  v->out.push_back({name, t});
  return 0;
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> read_hdf5_datasets(const std::string& path) {
  NEURN_CHECK(std::filesystem::exists(path), "read_hdf5: ", path, " does not exist");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors are reported below, not printed by the library
  NEURN_CHECK(H5Fis_hdf5(path.c_str()) > 0, "read_hdf5: ", path, " is not an HDF5 file");
  Handle f{H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose};
  NEURN_CHECK(f.id >= 0, "read_hdf5: cannot open ", path);
  Visit v{path, {}, {}};
  herr_t rc = H5Ovisit(f.id, H5_INDEX_NAME, H5_ITER_INC, visit_object, &v);
  NEURN_CHECK(rc >= 0 && v.error.empty(), "read_hdf5: ", path, ": ", v.error.empty() ? "cannot walk the file" : v.error);
  return v.out;
}

}  // namespace neurn
