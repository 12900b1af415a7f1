module Api
  class BaseController < ActionController::API
    PER_PAGE = 50

    rescue_from ActiveRecord::RecordNotFound do
      render json: { error: "not found" }, status: :not_found
    end

    rescue_from ActionController::ParameterMissing do |e|
      render json: { error: e.message }, status: :bad_request
    end

    private

    def page_param
      [params[:page].to_i, 1].max
    end
  end
end
